#!/bin/sh
# SLURM Epilog (slurm.conf `Epilog=/etc/slurm/epilog-energy.sh`, or called from the site's epilog): the
# node's energy counters at the job's end, for ceems_exporter's short-unit energy (docs/footprint.md).
exec "$(dirname "$0")/energy-counter.sh" end

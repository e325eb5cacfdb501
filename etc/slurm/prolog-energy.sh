#!/bin/sh
# SLURM Prolog (slurm.conf `Prolog=/etc/slurm/prolog-energy.sh`, or called from the site's prolog): the
# node's energy counters at the job's start, for ceems_exporter's short-unit energy (docs/footprint.md).
exec "$(dirname "$0")/energy-counter.sh" start

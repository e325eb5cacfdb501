#!/bin/sh
# Writes the node's cumulative energy counters for a SLURM job to the spool directory that ceems_exporter
# reads with --collector.slurm.energy-counter --collector.slurm.energy-counter.spool-dir=<dir> (issue 20,
# B9). Called by prolog-energy.sh (start) and epilog-energy.sh (end); see docs/footprint.md, "Short units".
# Never fails: a failing Prolog would drain the node, so problems go to stderr (slurmd's log) only.
#
#   CEEMS_ENERGY_SPOOL  spool directory (default /var/spool/ceems/energy)
#   CEEMS_ENERGY_SYSFS  sysfs root (default /sys)
#
# File `<spool>/<job id>.<start|end>`: `time <unix ms>`, `cpus <n>` when SLURM_JOB_CPUS_PER_NODE is set,
# then one `<rapl|cray|hwmon> <file> <µJ> [<max µJ>]` line per counter.

event=${1:-}
spool=${CEEMS_ENERGY_SPOOL:-/var/spool/ceems/energy}
sysfs=${CEEMS_ENERGY_SYSFS:-/sys}
job=${SLURM_JOB_ID:-}

case $event in start | end) ;; *) echo "energy-counter.sh: usage: energy-counter.sh start|end" >&2; exit 0 ;; esac
case $job in '' | *[!0-9]*) echo "energy-counter.sh: SLURM_JOB_ID '$job' is not a job id" >&2; exit 0 ;; esac
mkdir -p -m 0700 "$spool" || exit 0

tmp="$spool/.$job.$event.$$"
{
  echo "time $(date +%s%3N)"
  cpus=${SLURM_JOB_CPUS_PER_NODE:-}
  cpus=${cpus%%[!0-9]*} # "4(x2)" or "4,2": the first node's count
  [ -n "$cpus" ] && echo "cpus $cpus"
  # RAPL: package and DRAM zones (core and uncore are parts of the package)
  for zone in "$sysfs"/class/powercap/*; do
    [ -r "$zone/name" ] && [ -r "$zone/energy_uj" ] || continue
    case $(cat "$zone/name") in package-* | dram) ;; *) continue ;; esac
    echo "rapl $zone/energy_uj $(cat "$zone/energy_uj") $(cat "$zone/max_energy_range_uj" 2>/dev/null || echo 0)"
  done
  # Cray: "<joules> J <timestamp> us"
  f="$sysfs/cray/pm_counters/energy"
  [ -r "$f" ] && awk -v f="$f" 'NR == 1 { printf "cray %s %.0f\n", f, $1 * 1e6 }' "$f"
  for f in "$sysfs"/class/hwmon/*/energy*_input "$sysfs"/class/hwmon/*/device/energy*_input; do
    [ -r "$f" ] && echo "hwmon $f $(cat "$f")"
  done
  : # a missing counter above is no failure
} >"$tmp" 2>/dev/null && mv "$tmp" "$spool/$job.$event" || {
  echo "energy-counter.sh: cannot write $spool/$job.$event" >&2
  rm -f "$tmp"
}
exit 0

#!/usr/bin/env bash
# Stops what scripts/slurm-local-start.sh started: slurmd, slurmctld, and munged only if that
# script started it. Leaves the packages and $ZC_SLURM_DIR (logs) in place.
set -uo pipefail
dir=${ZC_SLURM_DIR:-/tmp/zc-slurm}
stop() { # PIDFILE NAME
    [ -f "$1" ] || return 0
    local pid
    pid=$(cat "$1")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        echo "slurm-local: stopped $2 ($pid)" >&2
    fi
    rm -f "$1"
}
stop "$dir/run/slurmd.pid" slurmd
stop "$dir/run/slurmctld.pid" slurmctld
stop "$dir/run/munged.started" munged
exit 0

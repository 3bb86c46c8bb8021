#!/usr/bin/env bash
# Starts a real single-node Slurm cluster on this machine, for the tests and for trying
# `zc submit`: installs Debian's packages if they are missing (root; `apt-get`), writes a config
# under $ZC_SLURM_DIR (default /tmp/zc-slurm), starts munged (unless one is running),
# slurmctld and slurmd, and waits until the node is idle.
#
# Its last line on stdout is the environment the Slurm clients need, so:
#   eval "$(scripts/slurm-local-start.sh)"     # sets SLURM_CONF
# Stop exactly what it started with scripts/slurm-local-stop.sh.
set -euo pipefail
dir=${ZC_SLURM_DIR:-/tmp/zc-slurm}
log() { echo "slurm-local: $*" >&2; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
    ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurmctld slurmd slurm-client munge (Debian packages)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >&2
fi

# A clean slate: stop daemons of an earlier start, forget its job state.
"$(dirname "$0")/slurm-local-stop.sh" >&2 || true
rm -rf "$dir/state" "$dir/spool"
mkdir -p "$dir/state" "$dir/spool" "$dir/run" "$dir/log"

host=$(hostname)
node=$(slurmd -C | head -n 1)
cat >"$dir/slurm.conf" <<CONF
ClusterName=zclocal
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
DependencyParameters=kill_invalid_depend
MailProg=/bin/true
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

# munged's socket is system-wide: use a running one, else start ours (and remember that).
if ! pgrep -x munged >/dev/null; then
    mkdir -p /run/munge && chown munge: /run/munge
    [ -f /etc/munge/munge.key ] || mungekey --create >&2
    runuser -u munge -- munged
    sleep 0.2
    pgrep -x munged >"$dir/run/munged.started"
    log "started munged"
fi

export SLURM_CONF=$dir/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 1 120); do
    if [ "$(sinfo -h -o %t 2>/dev/null)" = "idle" ]; then
        log "node $host idle (config $SLURM_CONF)"
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 0.5
done
log "the node did not become idle in 60 s; see $dir/log/"
exit 1

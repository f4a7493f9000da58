#!/usr/bin/env bash
# A single-node SLURM cluster on this machine (Debian's slurmctld, slurmd and munge), kept in one folder:
# the cluster path of aiida-ionfield tested for real, and a way to try the `core.slurm` recipe on a laptop.
#
#   bash setup_profiles/slurm/local-slurm.sh start DIR   # munged + slurmctld + slurmd, wait until the node is idle
#   bash setup_profiles/slurm/local-slurm.sh stop DIR    # stop all three, wait until they are gone
#   bash setup_profiles/slurm/local-slurm.sh env DIR     # the line to source so sbatch/squeue find this cluster
#
# Everything (config, munge key and socket, state, spool, logs, pid files) lives in DIR; nothing in /etc is
# touched, so clients need SLURM_CONF=DIR/slurm.conf (`eval "$(... env DIR)"`), and so does the AiiDA
# daemon that polls the queue: start it from that shell.
# Partitions: `debug` (default) and `gpu`. The node's GPUs are a GRES, so `--gres=gpu:1` jobs are scheduled
# as on a GPU cluster: its /dev/nvidiaN devices where it has them, else one stand-in GPU (/dev/null), and
# the jobs run on the CPU. No accounting daemon: --account and --qos are accepted, not enforced.
# Environment: SLURM_PORT (slurmctld; slurmd takes the next one; default 6817).
# Needs: apt-get install slurmctld slurmd slurm-client munge (run as root: slurmd must start job steps).
set -euo pipefail

usage() { echo "usage: $0 start|stop|env DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
ACTION=$1
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
CONF=$DIR/slurm.conf
PORT=${SLURM_PORT:-6817}
# real GPUs where the machine has them (/dev/nvidia0..), else one stand-in
DEVICES=$(ls /dev/nvidia[0-9]* 2>/dev/null | sort -V | paste -sd, || true)
GPUS=$([ -n "$DEVICES" ] && echo "$DEVICES" | tr ',' '\n' | wc -l || echo 1)
NODE=$(hostname -s)

need() {
    for tool in munged slurmctld slurmd sinfo sbatch; do
        command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install slurmctld slurmd slurm-client munge" >&2; exit 1; }
    done
    [ "$(id -u)" -eq 0 ] || { echo "run as root: slurmd must start job steps as the submitting user" >&2; exit 1; }
}

write_config() {
    local cpus memory
    cpus=$(nproc --all)  # not plain nproc: it obeys OMP_NUM_THREADS
    memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    cat >"$CONF" <<EOF
# written by local-slurm.sh: a single-node cluster in $DIR
ClusterName=ionfield-local
SlurmctldHost=$NODE
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
GresTypes=gpu
ReturnToService=2
KillWait=5
OverTimeLimit=0
MinJobAge=300
InactiveLimit=0
NodeName=$NODE CPUs=$cpus RealMemory=$memory Gres=gpu:$GPUS State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE MaxTime=INFINITE State=UP
EOF
    if [ -n "$DEVICES" ]; then
        echo "NodeName=$NODE Name=gpu File=$DEVICES" >"$DIR/gres.conf"
    else  # slurmd's gres/gpu wants a device file: /dev/null stands in for a GPU that is not there
        echo "NodeName=$NODE Name=gpu File=/dev/null Count=1" >"$DIR/gres.conf"
    fi
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
    need
    write_config
    if ! alive "$DIR/munged.pid"; then
        [ -s "$DIR/munge.key" ] || { dd if=/dev/urandom of="$DIR/munge.key" bs=1024 count=1 2>/dev/null; chmod 400 "$DIR/munge.key"; }
        munged --force --key-file="$DIR/munge.key" --socket="$DIR/munge.socket" --pid-file="$DIR/munged.pid" \
            --log-file="$DIR/log/munged.log" --seed-file="$DIR/munged.seed"
    fi
    export SLURM_CONF=$CONF
    alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF"
    alive "$DIR/slurmd.pid" || slurmd -f "$CONF"
    for _ in $(seq 60); do
        state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1 || true)
        case "$state" in idle*|mixed*|allocated*) echo "ok: node $NODE $state, partitions debug (default) and gpu; SLURM_CONF=$CONF"; return 0;; esac
        sleep 0.5
    done
    echo "the node did not become idle (state: ${state:-none}); see $DIR/log" >&2
    tail -n 5 "$DIR"/log/*.log >&2 || true
    exit 1
}

stop() {
    local name pids=()
    for name in slurmd slurmctld munged; do
        if alive "$DIR/$name.pid"; then
            pids+=("$(cat "$DIR/$name.pid")")
            kill "$(cat "$DIR/$name.pid")"
        fi
    done
    for _ in $(seq 100); do
        local left=0 pid
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
        [ $left -eq 0 ] && { echo "ok: stopped"; return 0; }
        sleep 0.2
    done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    echo "ok: stopped (killed)"
}

case "$ACTION" in
start) start ;;
stop) stop ;;
env) echo "export SLURM_CONF=$CONF" ;;
*) usage ;;
esac

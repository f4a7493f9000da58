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
# the jobs run on the CPU.
# Accounting (opt-in, SLURM_DB=NAME): slurmdbd keeps it in database NAME of a MySQL/MariaDB server and
# slurmctld enforces it (associations, limits, QOS), as on a production cluster: the submitting user has
# account `ionfield` (default) with QOS `normal` (default) and `short` (30 min at most); a job asking for
# another account or QOS is refused by sbatch. Without SLURM_DB, --account and --qos are accepted, not enforced.
# Environment: SLURM_PORT (slurmctld; slurmd takes the next one, slurmdbd the one after; default 6817);
# SLURM_DB, SLURM_DB_HOST (127.0.0.1), SLURM_DB_PORT (3306), SLURM_DB_USER (root), SLURM_DB_PASS (empty).
# Needs: apt-get install slurmctld slurmd slurm-client munge [slurmdbd] (run as root: slurmd must start job steps).
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
DB=${SLURM_DB:-}

need() {
    for tool in munged slurmctld slurmd sinfo sbatch ${DB:+slurmdbd sacctmgr}; do
        command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install slurmctld slurmd slurm-client munge${DB:+ slurmdbd}" >&2; exit 1; }
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
$(accounting_lines)
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

accounting_lines() {
    if [ -z "$DB" ]; then
        echo "AccountingStorageType=accounting_storage/none"
        return
    fi
    # AccountingStoragePass: with munge, the socket of the munged that signs messages to slurmdbd
    cat <<EOF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$NODE
AccountingStoragePort=$((PORT + 2))
AccountingStoragePass=$DIR/munge.socket
AccountingStorageEnforce=associations,limits,qos
EOF
}

write_dbd_config() {  # slurmdbd refuses a config that others can read: it holds the database password
    (
        umask 077
        cat >"$DIR/slurmdbd.conf" <<EOF
# written by local-slurm.sh: the accounting daemon of the cluster in $DIR
AuthType=auth/munge
AuthInfo=socket=$DIR/munge.socket
DbdHost=$NODE
DbdPort=$((PORT + 2))
SlurmUser=root
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=${SLURM_DB_HOST:-127.0.0.1}
StoragePort=${SLURM_DB_PORT:-3306}
StorageUser=${SLURM_DB_USER:-root}
StorageLoc=$DB
EOF
        # slurmdbd takes no empty StoragePass line; without one it connects with no password
        [ -z "${SLURM_DB_PASS:-}" ] || echo "StoragePass=$SLURM_DB_PASS" >>"$DIR/slurmdbd.conf"
    )
}

# the cluster, account `ionfield`, QOS `normal` and `short`, and the submitting user; kept when they exist
add_associations() {
    local user
    user=$(id -un)
    for _ in $(seq 20); do sacctmgr -n show cluster >/dev/null 2>&1 && break; sleep 0.5; done
    sacctmgr -n show cluster >/dev/null || { echo "slurmdbd does not answer; see $DIR/log/slurmdbd.log" >&2; tail -n 5 "$DIR/log/slurmdbd.log" >&2; exit 1; }
    [ -n "$(sacctmgr -n show cluster ionfield-local format=cluster)" ] || sacctmgr -i add cluster ionfield-local >/dev/null
    # DenyOnLimit: a job over the QOS's limits is refused by sbatch, not left pending for ever
    [ -n "$(sacctmgr -n show qos short format=name)" ] || sacctmgr -i add qos short MaxWall=00:30:00 Flags=DenyOnLimit >/dev/null
    [ -n "$(sacctmgr -n show account ionfield format=account)" ] ||
        sacctmgr -i add account ionfield Cluster=ionfield-local Description=aiida-ionfield Organization=local >/dev/null
    # the user (root, too, who is already in account root) needs an association with account ionfield
    [ -n "$(sacctmgr -nP show assoc where user="$user" account=ionfield format=account)" ] ||
        sacctmgr -i add user "$user" Account=ionfield Cluster=ionfield-local >/dev/null
    sacctmgr -i modify user "$user" set DefaultAccount=ionfield >/dev/null || true  # "nothing modified" is fine
    sacctmgr -i modify user "$user" where account=ionfield set QOS=normal,short DefaultQOS=normal >/dev/null || true
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
    need
    if alive "$DIR/slurmctld.pid" || alive "$DIR/slurmd.pid"; then  # keep the config the running daemons read
        echo "already running from $CONF; its settings (SLURM_PORT, SLURM_DB) are kept"
    else
        write_config
        if [ -n "$DB" ]; then write_dbd_config; else rm -f "$DIR/slurmdbd.conf"; fi
    fi
    if ! alive "$DIR/munged.pid"; then
        [ -s "$DIR/munge.key" ] || { dd if=/dev/urandom of="$DIR/munge.key" bs=1024 count=1 2>/dev/null; chmod 400 "$DIR/munge.key"; }
        munged --force --key-file="$DIR/munge.key" --socket="$DIR/munge.socket" --pid-file="$DIR/munged.pid" \
            --log-file="$DIR/log/munged.log" --seed-file="$DIR/munged.seed"
    fi
    export SLURM_CONF=$CONF
    if [ -f "$DIR/slurmdbd.conf" ]; then
        DB=$(sed -n 's/^StorageLoc=//p' "$DIR/slurmdbd.conf")
        alive "$DIR/slurmdbd.pid" || slurmdbd  # reads slurmdbd.conf beside $SLURM_CONF; creates database $DB when missing
        add_associations
    fi
    alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF"
    alive "$DIR/slurmd.pid" || slurmd -f "$CONF"
    for _ in $(seq 60); do
        state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1 || true)
        case "$state" in idle*|mixed*|allocated*)
            echo "ok: node $NODE $state, partitions debug (default) and gpu${DB:+, accounting in database $DB (account ionfield, QOS normal and short)}; SLURM_CONF=$CONF"
            return 0;;
        esac
        sleep 0.5
    done
    echo "the node did not become idle (state: ${state:-none}); see $DIR/log" >&2
    tail -n 5 "$DIR"/log/*.log >&2 || true
    exit 1
}

stop() {
    local name pids=()
    for name in slurmd slurmctld slurmdbd munged; do  # whichever of them run
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

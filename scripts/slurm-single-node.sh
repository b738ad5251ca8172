#!/usr/bin/env bash
# A single-node SLURM cluster with accounting on this machine, for tests/test_slurm.py (and for trying
# `--launcher submitit --cluster slurm` by hand): munged, MariaDB, slurmdbd, slurmctld and slurmd started as
# plain background daemons (no systemd), as root, on Debian's packages (SLURM 22.05 on bookworm).
#
#   scripts/slurm-single-node.sh [--install]
#
# --install: apt-get the missing packages first. Safe to run twice: a daemon already running is kept (a
# changed slurm.conf restarts slurmctld and slurmd), the accounting database and cluster are created once. Every wait is
# bounded. Ends with one line: "SLURM ready: ..." (exit 0), or "SLURM not started: <reason>" on stderr
# (exit 1); the daemons' own logs are in /var/log/slurm. Accounting is not optional: submitit reads a task's
# state from `sacct`, and without it a cancelled or killed task is never seen as finished.
set -uo pipefail

T0=$(date +%s)
export PATH="$PATH:/usr/sbin:/sbin"          # the daemons live there
LOG=/var/log/slurm
PACKAGES="munge slurm-client slurmctld slurmd slurmdbd mariadb-server"
CLUSTER=backdrop
NODE=$(hostname -s)

fail() { echo "SLURM not started: $*" >&2; exit 1; }

# wait_for SECONDS WHAT COMMAND...: poll COMMAND every half second until it succeeds, or fail naming WHAT
wait_for() {
  local secs=$1 what=$2; shift 2
  local end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || fail "$what not ready after ${secs} s (logs in $LOG)"
    sleep 0.5
  done
}

# start NAME COMMAND...: start a daemon unless a process of that name runs; its output goes to $LOG/NAME.out
start() {
  local name=$1; shift
  pgrep -x "$name" >/dev/null && return 0
  setsid "$@" </dev/null >>"$LOG/$name.out" 2>&1 &
}

# write_conf FILE OWNER MODE: stdin to FILE if it differs; returns 0 when the file changed
write_conf() {
  local tmp; tmp=$(mktemp)
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
  install -o "$2" -g "$2" -m "$3" "$tmp" "$1" && rm -f "$tmp"
}

[ "$(id -u)" = 0 ] || fail "needs root (it starts system daemons and writes /etc/slurm)"

# ---------------------------------------------------------------- packages
missing() {
  local c; for c in munged mungekey mariadbd mariadb slurmdbd slurmctld slurmd sinfo sbatch sacct sacctmgr scontrol; do
    command -v "$c" >/dev/null 2>&1 || echo "$c"
  done
}
if [ -n "$(missing)" ] && [ "${1:-}" = --install ]; then
  command -v apt-get >/dev/null 2>&1 || fail "missing $(echo $(missing)) and no apt-get to install $PACKAGES"
  { DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends \
         -o DPkg::Lock::Timeout=120 $PACKAGES; } >/tmp/slurm-single-node-apt.log 2>&1 \
    || fail "apt-get install $PACKAGES failed (see /tmp/slurm-single-node-apt.log)"
fi
[ -z "$(missing)" ] || fail "missing $(echo $(missing)): apt-get install $PACKAGES (or run with --install)"

install -d -o slurm -g slurm "$LOG" /run/slurm /var/spool/slurmctld
install -d /var/spool/slurmd

# ---------------------------------------------------------------- munge (authentication between the daemons)
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile /etc/munge/munge.key && chown munge:munge /etc/munge/munge.key \
    && chmod 400 /etc/munge/munge.key || fail "cannot create /etc/munge/munge.key"
fi
install -d -o munge -g munge -m 755 /run/munge
munge_ok() { munge -n | unmunge; }
if ! munge_ok >/dev/null 2>&1; then
  pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged >>"$LOG/munged.out" 2>&1 \
    || fail "munged did not start (see $LOG/munged.out)"
  wait_for 20 munged munge_ok
fi

# ---------------------------------------------------------------- slurm.conf (read by every daemon and command)
MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
[ -n "$MEM" ] || fail "slurmd -C does not report this node's memory"
CHANGED=0
if write_conf /etc/slurm/slurm.conf root 644 <<EOF
# written by backdrop-repro's scripts/slurm-single-node.sh
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
# a requeued job waits cred_expire + 1 s before it starts again (SLURM's default: 121 s), and the main
# scheduling loop then starts it within sched_interval (default 60 s): a test cluster's requeue in seconds
AuthInfo=cred_expire=5
SchedulerParameters=sched_interval=5
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
JobAcctGatherType=jobacct_gather/linux
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$(( MEM * 9 / 10 )) State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
then
  CHANGED=1
fi

# ---------------------------------------------------------------- MariaDB and slurmdbd (accounting: sacct)
install -d -o mysql -g mysql /run/mysqld
[ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >>"$LOG/mariadbd.out" 2>&1 \
  || fail "mariadb-install-db failed (see $LOG/mariadbd.out)"
start mariadbd mariadbd --user=mysql --bind-address=127.0.0.1
wait_for 60 MariaDB mariadb -e 'select 1'
mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" || fail "cannot create MariaDB's user slurm"

write_conf /etc/slurm/slurmdbd.conf slurm 600 <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
LogFile=$LOG/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
start slurmdbd slurmdbd
wait_for 60 slurmdbd sacctmgr --noheader list cluster
sacctmgr --noheader --parsable2 list cluster format=cluster | grep -qx "$CLUSTER" \
  || sacctmgr --immediate add cluster "$CLUSTER" >/dev/null || fail "sacctmgr cannot add the cluster $CLUSTER"

# ---------------------------------------------------------------- slurmctld and slurmd
stopped() { ! pgrep -x slurmctld && ! pgrep -x slurmd; }
if [ "$CHANGED" = 1 ] && ! stopped >/dev/null; then   # a changed slurm.conf: restart both (reconfigure misses some keys)
  for d in slurmctld slurmd; do [ -s /run/slurm/$d.pid ] && kill "$(cat /run/slurm/$d.pid)" 2>/dev/null; done
  wait_for 30 "the old slurmctld and slurmd to stop" stopped
fi
start slurmctld slurmctld
wait_for 30 slurmctld scontrol ping
start slurmd slurmd
node_up() { sinfo --noheader --nodes "$NODE" --format %t | grep -qE '^(idle|mix|alloc)'; }
wait_for 60 "node $NODE" node_up

# ---------------------------------------------------------------- one job end to end, seen by sacct
JOB=$(timeout 120 sbatch --parsable --wait --output /dev/null --time 1 --job-name slurm-single-node --wrap true) \
  || fail "a test job did not complete (sbatch --wait; see $LOG/slurmctld.log and $LOG/slurmd.log)"
seen() { sacct --noheader --parsable2 --jobs "${JOB%%;*}" --format State | grep -qx COMPLETED; }
wait_for 30 "accounting (sacct does not show the test job ${JOB%%;*})" seen

echo "SLURM ready: node $NODE ($(nproc) CPUs, state $(sinfo --noheader --nodes "$NODE" --format %t)), cluster $CLUSTER" \
     "with accounting (sacct), in $(( $(date +%s) - T0 )) s"

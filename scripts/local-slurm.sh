#!/usr/bin/env bash
# A one-node SLURM cluster with accounting on this machine, for trying a sweep before a real
# cluster and for the SLURM tests: munge, MariaDB, slurmdbd, slurmctld and slurmd from Debian's
# packages, every file (config, state, spool, logs, database, munge key) under one folder,
# every daemon bound to 127.0.0.1 on its own ports. Needs root (slurmd runs jobs as their
# user); no systemd needed.
#
#   scripts/local-slurm.sh up        install the packages if missing, start (idempotent)
#   scripts/local-slurm.sh status    exit 0 when every daemon runs and the node answers
#   scripts/local-slurm.sh env       print `export SLURM_CONF=...` (eval it to use the cluster)
#   scripts/local-slurm.sh down      cancel its jobs, stop every daemon, remove the folder
#
# Settings (environment): LOCAL_SLURM_DIR (default /tmp/attempt-dist-slurm), LOCAL_SLURM_CPUS
# (default: all cores), LOCAL_SLURM_PORT_BASE (default 16810: slurmctld +7, slurmd +8,
# slurmdbd +9, MariaDB +6).
set -euo pipefail

DIR="${LOCAL_SLURM_DIR:-/tmp/attempt-dist-slurm}"
BASE="${LOCAL_SLURM_PORT_BASE:-16810}"
CTLD_PORT=$((BASE + 7)) SLURMD_PORT=$((BASE + 8)) DBD_PORT=$((BASE + 9)) DB_PORT=$((BASE + 6))
CPUS="${LOCAL_SLURM_CPUS:-$(nproc)}"
NODE="$(hostname -s)"
CLUSTER=localslurm
PACKAGES=(munge mariadb-server slurmctld slurmd slurmdbd slurm-client)
export SLURM_CONF="$DIR/etc/slurm.conf"

say() { echo "local-slurm: $*"; }
die() { echo "local-slurm: error: $*" >&2; exit 1; }

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds (each try bounded by
# its own timeout: a client can hang on a daemon that is still starting).
wait_for() {
  local limit=$1 what=$2; shift 2
  for _ in $(seq 1 $((limit * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  die "$what did not come up in ${limit}s; see the logs in $DIR/log"
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
  local missing=()
  for cmd in munged mariadbd slurmctld slurmd slurmdbd sbatch; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them (Debian/Ubuntu: ${PACKAGES[*]})"
  say "installing ${PACKAGES[*]}"
  # The packages' own services must not start: this cluster runs its daemons from $DIR.
  local policy=/usr/sbin/policy-rc.d added=0
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy && added=1; fi
  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >"${TMPDIR:-/tmp}/local-slurm-apt.log" 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >"${TMPDIR:-/tmp}/local-slurm-apt.log" 2>&1; }) \
    || { [[ $added == 1 ]] && rm -f $policy; die "apt-get install failed; see ${TMPDIR:-/tmp}/local-slurm-apt.log"; }
  [[ $added == 1 ]] && rm -f $policy
  return 0
}

write_configs() {
  mkdir -p "$DIR"/{etc,state,spool,log,run,munge,mysql}
  chmod 755 "$DIR/munge"  # clients reach the socket; the key itself is 0400
  [[ -f "$DIR/munge/munge.key" ]] || { dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none; chmod 400 "$DIR/munge/munge.key"; }
  [[ -f "$DIR/etc/db.pass" ]] || { head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$DIR/etc/db.pass"; chmod 600 "$DIR/etc/db.pass"; }
  local mem_mb per_cpu
  mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
  per_cpu=$(( mem_mb / CPUS ))
  cat > "$SLURM_CONF" <<EOF
# Written by scripts/local-slurm.sh: a one-node cluster bound to this host.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
PlugStackConfig=$DIR/etc/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$per_cpu
SchedulerType=sched/backfill
ReturnToService=2
# Short waits: requeued and cancelled jobs end quickly, as a test expects.
KillWait=5
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# For slurmdbd, this names the munge socket its clients authenticate through.
AccountingStoragePass=$DIR/munge/munge.socket
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  : > "$DIR/etc/plugstack.conf"
  cat > "$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
DbdAddr=127.0.0.1
DbdHost=$NODE
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$(cat "$DIR/etc/db.pass")
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$DIR/etc/slurmdbd.conf"
}

start_munge() {
  pid_alive "$DIR/run/munged.pid" && return 0
  munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munge.seed"
  wait_for 10 munged munge --socket="$DIR/munge/munge.socket" -n
}

mysql_cli() { timeout 20 mariadb --no-defaults --socket="$DIR/run/mysqld.sock" -u root "$@"; }

start_mariadb() {
  pid_alive "$DIR/run/mysqld.pid" && return 0
  if [[ ! -d "$DIR/mysql/mysql" ]]; then
    mariadb-install-db --no-defaults --datadir="$DIR/mysql" --user=root --skip-test-db \
      --auth-root-authentication-method=socket >"$DIR/log/mariadb-install.log" 2>&1 \
      || die "mariadb-install-db failed; see $DIR/log/mariadb-install.log"
  fi
  setsid mariadbd --no-defaults --datadir="$DIR/mysql" --socket="$DIR/run/mysqld.sock" --port="$DB_PORT" \
    --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$DIR/run/mysqld.pid" --user=root \
    --log-error="$DIR/log/mariadb.log" --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
  wait_for 60 MariaDB mysql_cli -e "SELECT 1"
  mysql_cli -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$(cat "$DIR/etc/db.pass")';
                GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
}

start_slurm() {
  pid_alive "$DIR/run/slurmdbd.pid" || slurmdbd
  wait_for 60 slurmdbd timeout 10 sacctmgr -n list cluster
  if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
  pid_alive "$DIR/run/slurmctld.pid" || slurmctld -i
  wait_for 30 slurmctld timeout 10 scontrol ping
  pid_alive "$DIR/run/slurmd.pid" || slurmd -N "$NODE"
  wait_for 60 "node $NODE" node_idle
}

node_idle() { timeout 10 sinfo -h -N -n "$NODE" -o %t | grep -Eq '^(idle|mix|alloc)'; }

up() {
  [[ $(id -u) == 0 ]] || die "run as root (slurmd starts jobs as their user; apt-get installs the packages)"
  install_packages
  if status >/dev/null 2>&1; then say "already up ($SLURM_CONF)"; return 0; fi
  write_configs
  start_munge
  start_mariadb
  start_slurm
  say "up: node $NODE, $CPUS CPUs, accounting on; use it with: export SLURM_CONF=$SLURM_CONF"
}

status() {
  local ok=0
  for daemon in munged mysqld slurmdbd slurmctld slurmd; do
    if pid_alive "$DIR/run/$daemon.pid"; then echo "$daemon: running (pid $(cat "$DIR/run/$daemon.pid"))"
    else echo "$daemon: stopped"; ok=1; fi
  done
  [[ $ok == 0 ]] || return 1
  node_idle || { echo "node $NODE: not answering"; return 1; }
  timeout 10 sacct -n -X -S now-1minute >/dev/null || { echo "sacct: not answering"; return 1; }
  echo "node $NODE: $(sinfo -h -N -n "$NODE" -o %t); SLURM_CONF=$SLURM_CONF"
}

stop_pidfile() {  # stop_pidfile FILE NAME: SIGTERM, wait up to 30 s, then SIGKILL
  local file=$1 pid
  [[ -f $file ]] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && { say "$2 ignored SIGTERM; killing it"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$file"
}

down() {
  [[ -d $DIR ]] || { say "nothing to stop ($DIR absent)"; return 0; }
  if pid_alive "$DIR/run/slurmctld.pid"; then
    local jobs
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
    if [[ -n $jobs ]]; then
      say "cancelling jobs: $(echo $jobs)"
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 1 120); do [[ -z $(timeout 10 squeue -h -o %i 2>/dev/null) ]] && break; sleep 0.25; done
    fi
  fi
  stop_pidfile "$DIR/run/slurmd.pid" slurmd
  # Job steps outlive slurmd: end any left in this cluster's spool (their own process groups).
  for pid in $(pgrep -x slurmstepd || true); do
    if tr '\0' ' ' < "/proc/$pid/environ" 2>/dev/null | grep -q "SLURM_CONF=$SLURM_CONF"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  stop_pidfile "$DIR/run/slurmctld.pid" slurmctld
  stop_pidfile "$DIR/run/slurmdbd.pid" slurmdbd
  stop_pidfile "$DIR/run/mysqld.pid" mariadbd
  stop_pidfile "$DIR/run/munged.pid" munged
  rm -rf "$DIR"
  say "down: every daemon stopped, $DIR removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) echo "export SLURM_CONF=$SLURM_CONF" ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac

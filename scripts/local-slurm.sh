#!/usr/bin/env bash
# A SLURM cluster with accounting on this machine, for trying a sweep before a real cluster and
# for the SLURM tests: munge, MariaDB, slurmdbd, slurmctld and one slurmd per emulated node from
# Debian's packages, every file (config, state, spool, logs, database, munge key) under one
# folder, every daemon bound to 127.0.0.1 on its own ports. Needs root (slurmd runs jobs as
# their user); no systemd needed.
#
# Several nodes (LOCAL_SLURM_NODES=2) are several `slurmd -N NAME` on this host, each with its
# own port, spool, log and pid file and its share of the CPUs and memory. Their names
# (lslurm1, lslurm2, ...) are what a job's node list says, so ranks use them as MASTER_ADDR:
# `up` maps them to 127.0.0.1 in /etc/hosts (one marked line, removed by `down`). One node
# (the default) is this host under its own name, as a single-node cluster has always been.
#
#   scripts/local-slurm.sh up        install the packages if missing, start (idempotent)
#   scripts/local-slurm.sh status    exit 0 when every daemon runs and the node answers
#   scripts/local-slurm.sh env       print `export SLURM_CONF=...` (eval it to use the cluster)
#   scripts/local-slurm.sh down      cancel its jobs, stop every daemon, remove the folder
#
# Settings (environment): LOCAL_SLURM_DIR (default /tmp/attempt-dist-slurm), LOCAL_SLURM_NODES
# (default 1), LOCAL_SLURM_CPUS (default: all cores; split between the nodes; more than the cores
# is allowed, emulated CPUs that share them: 4 on 2 cores gives two 2-CPU nodes),
# LOCAL_SLURM_PORT_BASE (default 16810: slurmctld +7, slurmdbd +9, MariaDB +6, the slurmd of
# node K +20+K; one node: +8).
set -euo pipefail

DIR="${LOCAL_SLURM_DIR:-/tmp/attempt-dist-slurm}"
BASE="${LOCAL_SLURM_PORT_BASE:-16810}"
CTLD_PORT=$((BASE + 7)) SLURMD_PORT=$((BASE + 8)) DBD_PORT=$((BASE + 9)) DB_PORT=$((BASE + 6))
CPUS="${LOCAL_SLURM_CPUS:-$(nproc)}"
NODE_COUNT="${LOCAL_SLURM_NODES:-1}"
[[ $NODE_COUNT =~ ^[1-9][0-9]*$ ]] || { echo "local-slurm: error: LOCAL_SLURM_NODES=$NODE_COUNT is not a node count (1, 2, ...)" >&2; exit 2; }
HOST="$(hostname -s)"
if [[ $NODE_COUNT == 1 ]]; then NODES=("$HOST"); else NODES=(); for k in $(seq 1 "$NODE_COUNT"); do NODES+=("lslurm$k"); done; fi
NODE_CPUS=$(( CPUS / NODE_COUNT > 0 ? CPUS / NODE_COUNT : 1 ))
HOSTS_MARK="# local-slurm $DIR"
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
  mem_mb=$(( mem_mb / NODE_COUNT ))  # per node
  per_cpu=$(( mem_mb / NODE_CPUS ))
  cat > "$SLURM_CONF" <<EOF
# Written by scripts/local-slurm.sh: a $NODE_COUNT-node cluster bound to this host.
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$DIR/state
# %n: the node's name, so each slurmd of this host has its own.
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
PlugStackConfig=$DIR/etc/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$per_cpu
SchedulerType=sched/backfill
ReturnToService=2
# Short waits: requeued and cancelled jobs end quickly, and a lost node (its slurmd killed) is
# marked down, its jobs requeued, within about 30 s, as the tests expect.
KillWait=5
SlurmdTimeout=10
# The nodes are what this file says (LOCAL_SLURM_CPUS may emulate more CPUs than the cores).
SlurmdParameters=config_overrides
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# For slurmdbd, this names the munge socket its clients authenticate through.
AccountingStoragePass=$DIR/munge/munge.socket
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
$(node_lines "$mem_mb")
PartitionName=local Nodes=$(IFS=,; echo "${NODES[*]}") Default=YES MaxTime=INFINITE State=UP
EOF
  : > "$DIR/etc/plugstack.conf"
  cat > "$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
DbdAddr=127.0.0.1
DbdHost=$HOST
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

# node_lines MEM_MB: one NodeName line per node, each on 127.0.0.1 with its own slurmd port.
node_lines() {
  local k=0 name
  for name in "${NODES[@]}"; do
    k=$((k + 1))
    echo "NodeName=$name NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$(slurmd_port $k) CPUs=$NODE_CPUS RealMemory=$1 State=UNKNOWN"
  done
}

slurmd_port() { if [[ $NODE_COUNT == 1 ]]; then echo "$SLURMD_PORT"; else echo $((BASE + 20 + $1)); fi; }

# The emulated nodes' names resolve to this host (a job's node list names its MASTER_ADDR).
map_node_names() {
  [[ $NODE_COUNT == 1 ]] && return 0
  [[ -w /etc/hosts ]] || die "/etc/hosts is not writable: the node names ${NODES[*]} cannot be mapped to 127.0.0.1"
  unmap_node_names
  [[ -z $(tail -c 1 /etc/hosts) ]] || echo >> /etc/hosts  # a last line without its newline
  printf '127.0.0.1 %s %s\n' "${NODES[*]}" "$HOSTS_MARK" >> /etc/hosts
}

unmap_node_names() {
  [[ -w /etc/hosts ]] || return 0
  grep -qF "$HOSTS_MARK" /etc/hosts || return 0
  # Rewritten in place, not replaced: /etc/hosts is often a bind mount in containers.
  local kept; kept=$(grep -vF "$HOSTS_MARK" /etc/hosts || true); printf '%s\n' "$kept" > /etc/hosts
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
  local name
  for name in "${NODES[@]}"; do
    pid_alive "$DIR/run/slurmd-$name.pid" || slurmd -N "$name"
  done
  for name in "${NODES[@]}"; do wait_for 60 "node $name" node_idle "$name"; done
}

node_idle() { timeout 10 sinfo -h -N -n "$1" -o %t | grep -Eq '^(idle|mix|alloc)'; }

up() {
  [[ $(id -u) == 0 ]] || die "run as root (slurmd starts jobs as their user; apt-get installs the packages)"
  install_packages
  if status >/dev/null 2>&1; then say "already up ($SLURM_CONF)"; return 0; fi
  local running
  running=$(grep -c '^NodeName=' "$SLURM_CONF" 2>/dev/null || true)
  if pid_alive "$DIR/run/slurmctld.pid" && [[ -n $running && $running != "$NODE_COUNT" ]]; then
    die "a $running-node cluster runs in $DIR; stop it first (scripts/local-slurm.sh down) to start $NODE_COUNT node(s)"
  fi
  write_configs
  map_node_names
  start_munge
  start_mariadb
  start_slurm
  say "up: $NODE_COUNT node(s) ${NODES[*]}, $NODE_CPUS CPUs each, accounting on; use it with: export SLURM_CONF=$SLURM_CONF"
}

status() {
  local ok=0 daemon name
  for daemon in munged mysqld slurmdbd slurmctld "${NODES[@]/#/slurmd-}"; do
    if pid_alive "$DIR/run/$daemon.pid"; then echo "$daemon: running (pid $(cat "$DIR/run/$daemon.pid"))"
    else echo "$daemon: stopped"; ok=1; fi
  done
  [[ $ok == 0 ]] || return 1
  # Up means the cluster asked for: one of 1 node is not up for LOCAL_SLURM_NODES=2.
  [[ $(grep -c '^NodeName=' "$SLURM_CONF" 2>/dev/null) == "$NODE_COUNT" ]] \
    || { echo "cluster: not the $NODE_COUNT node(s) asked for (see $SLURM_CONF)"; return 1; }
  for name in "${NODES[@]}"; do
    node_idle "$name" || { echo "node $name: not answering"; return 1; }
  done
  timeout 10 sacct -n -X -S now-1minute >/dev/null || { echo "sacct: not answering"; return 1; }
  for name in "${NODES[@]}"; do echo "node $name: $(sinfo -h -N -n "$name" -o %t)"; done
  echo "SLURM_CONF=$SLURM_CONF"
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
  [[ -d $DIR ]] || { unmap_node_names; say "nothing to stop ($DIR absent)"; return 0; }
  if pid_alive "$DIR/run/slurmctld.pid"; then
    local jobs
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
    if [[ -n $jobs ]]; then
      say "cancelling jobs: $(echo $jobs)"
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 1 120); do [[ -z $(timeout 10 squeue -h -o %i 2>/dev/null) ]] && break; sleep 0.25; done
    fi
  fi
  local file
  for file in "$DIR"/run/slurmd-*.pid; do [[ -e $file ]] && stop_pidfile "$file" "$(basename "$file" .pid)"; done
  # Job steps outlive slurmd: end any left in this cluster's spool (their own process groups).
  for pid in $(pgrep -x slurmstepd || true); do
    if tr '\0' ' ' < "/proc/$pid/environ" 2>/dev/null | grep -q "SLURM_CONF=$SLURM_CONF"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  stop_pidfile "$DIR/run/slurmctld.pid" slurmctld
  stop_pidfile "$DIR/run/slurmdbd.pid" slurmdbd
  stop_pidfile "$DIR/run/mysqld.pid" mariadbd
  stop_pidfile "$DIR/run/munged.pid" munged
  rm -rf "$DIR"
  unmap_node_names
  say "down: every daemon stopped, $DIR removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) echo "export SLURM_CONF=$SLURM_CONF" ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac

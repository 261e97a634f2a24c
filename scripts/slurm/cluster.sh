#!/usr/bin/env bash
# A one-node SLURM cluster on localhost, for trying the SLURM launcher and for the slow tests.
#
#   scripts/slurm/cluster.sh start    # install (if missing), configure, start; wait for an idle node
#   scripts/slurm/cluster.sh status   # daemons, node and queue (exit 0 running, 3 not running)
#   scripts/slurm/cluster.sh env      # the two export lines that point clients at this cluster
#   scripts/slurm/cluster.sh stop     # cancel jobs, stop the daemons this script started
#
# Debian's packages (slurmctld slurmd slurm-client munge) are installed with apt-get when
# missing (needs root). munged, slurmctld and slurmd are started by hand (no systemd), and
# everything they write (config, munge key and socket, state, spool, logs, pid files) stays
# in $HARNESS_SLURM_DIR (default /tmp/harness-slurm). Clients need SLURM_CONF and, for
# submitit's job-state polling without accounting, the sacct shim first on PATH:
#   eval "$(scripts/slurm/cluster.sh env)"
# `stop` kills only the PIDs recorded in the pid files, never by process name.
# See docs/cluster.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
D="${HARNESS_SLURM_DIR:-/tmp/harness-slurm}"
CONF="$D/slurm.conf"
MUNGE_DIR="$D/munge"
SOCKET="$MUNGE_DIR/munge.socket.2"
KEY="$MUNGE_DIR/munge.key"
RUN="$D/run"
LOG="$D/log"
TIMEOUT="${HARNESS_SLURM_TIMEOUT:-60}"   # seconds to wait for an idle node
NODE=localhost
PACKAGES=(slurmctld slurmd slurm-client munge)

say() { printf 'cluster: %s\n' "$*"; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }
# SLURM cannot be installed here (not root, no apt-get, apt-get failed): exit 4, which the
# slow tests turn into a skip with this message.
cannot_install() { printf 'cluster: error: %s\n' "$*" >&2; exit 4; }

# --- pid files --------------------------------------------------------------------------
pidfile() {  # daemon name -> its pid file
  case "$1" in
    munged) echo "$MUNGE_DIR/munged.pid" ;;
    slurmctld) echo "$RUN/slurmctld.pid" ;;
    slurmd) echo "$RUN/slurmd.pid" ;;
  esac
}

# Whether process $1 is alive (not a zombie) and is daemon $2 (a recycled PID is not ours).
pid_is() {
  local state comm
  [ -r "/proc/$1/stat" ] || return 1
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "$state" != Z ] || return 1
  comm="$(cat "/proc/$1/comm" 2>/dev/null)" || return 1
  [ "$comm" = "$2" ]
}

# The recorded PID of a daemon, if that process is alive and is that daemon.
live_pid() {
  local f pid
  f="$(pidfile "$1")"
  [ -s "$f" ] || return 1
  pid="$(tr -dc '0-9' <"$f")"
  [ -n "$pid" ] && pid_is "$pid" "$1" || return 1
  echo "$pid"
}

running() { live_pid munged >/dev/null && live_pid slurmctld >/dev/null && live_pid slurmd >/dev/null; }

# Send TERM to a recorded daemon, wait for that PID to exit (daemons remove their own pid
# file early in shutdown, so wait on the PID, not the file), then KILL; remove the pid file.
stop_daemon() {
  local name="$1" pid
  if pid="$(live_pid "$name")"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
      pid_is "$pid" "$name" || break
      sleep 0.1
    done
    if pid_is "$pid" "$name"; then
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do pid_is "$pid" "$name" || break; sleep 0.1; done
      say "killed $name (pid $pid) after 15 s"
    else
      say "stopped $name (pid $pid)"
    fi
  fi
  rm -f "$(pidfile "$name")"
}

# --- install, configure -----------------------------------------------------------------
have_packages() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    && command -v munged >/dev/null && command -v mungekey >/dev/null
}

install_packages() {
  have_packages && return 0
  [ "$(id -u)" = 0 ] || cannot_install "SLURM is not installed and installing it needs root (apt-get install ${PACKAGES[*]})"
  command -v apt-get >/dev/null || cannot_install "SLURM is not installed and there is no apt-get to install it"
  say "installing ${PACKAGES[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >"$D/apt.log" 2>&1; then
    apt-get update -qq >>"$D/apt.log" 2>&1 || true
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >>"$D/apt.log" 2>&1 \
      || { tail -n 20 "$D/apt.log" >&2; cannot_install "apt-get install ${PACKAGES[*]} failed (log: $D/apt.log)"; }
  fi
  have_packages || cannot_install "installed ${PACKAGES[*]} but the daemons are still missing"
}

write_conf() {
  local cpus mem_kb real_mb
  cpus="$(nproc)"
  mem_kb="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
  real_mb=$(( mem_kb * 85 / 100 / 1024 ))
  cat >"$CONF" <<EOF
# Written by scripts/slurm/cluster.sh: a one-node cluster on localhost.
ClusterName=harness
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MailProg=/bin/true
SchedulerParameters=batch_sched_delay=0
MinJobAge=3600
KillWait=5
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  CONF_SUMMARY="CPUs=$cpus RealMemory=${real_mb}MB"
}

make_dirs() {
  mkdir -p "$D" "$D/bin" "$D/state" "$D/spool" "$RUN" "$LOG" "$MUNGE_DIR"
  chmod 755 "$D" "$RUN" "$LOG"
  chmod 700 "$D/state" "$D/spool"
  if id munge >/dev/null 2>&1; then
    chown munge:munge "$MUNGE_DIR"
  fi
  chmod 755 "$MUNGE_DIR"   # the socket must be reachable; the key itself is 0600
}

make_key() {
  [ -s "$KEY" ] && return 0
  runuser -u munge -- mungekey --create --keyfile="$KEY" --bits=1024
  chmod 600 "$KEY"
  say "created munge key $KEY"
}

install_shim() {
  install -m 755 "$HERE/sacct" "$D/bin/sacct"
  cat >"$D/env.sh" <<EOF
export SLURM_CONF=$CONF
export PATH=$D/bin:\$PATH
EOF
}

print_env() {
  echo "export SLURM_CONF=$CONF"
  echo "export PATH=$D/bin:\$PATH"
}

node_state() { sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n 1; }

show_logs() {
  local f
  for f in "$MUNGE_DIR/munged.log" "$LOG/slurmctld.log" "$LOG/slurmd.log"; do
    [ -f "$f" ] || continue
    echo "--- tail of $f" >&2
    tail -n 15 "$f" >&2
  done
}

# --- commands ---------------------------------------------------------------------------
cmd_start() {
  export SLURM_CONF="$CONF"
  if running; then
    say "already running in $D (munged $(live_pid munged), slurmctld $(live_pid slurmctld), slurmd $(live_pid slurmd)); nothing done"
    install_shim
    say "node $NODE: $(node_state)"
    print_env
    return 0
  fi
  local t0 t1 state
  t0="$(date +%s.%N)"
  mkdir -p "$D"
  install_packages
  make_dirs
  write_conf
  install_shim
  make_key
  say "wrote $CONF ($CONF_SUMMARY, partition debug) and $D/bin/sacct"

  if ! live_pid munged >/dev/null; then
    runuser -u munge -- munged --force --socket="$SOCKET" --key-file="$KEY" \
      --log-file="$MUNGE_DIR/munged.log" --pid-file="$(pidfile munged)" \
      --seed-file="$MUNGE_DIR/munged.seed" \
      || { show_logs; die "munged did not start"; }
  fi
  for _ in $(seq 1 50); do live_pid munged >/dev/null && break; sleep 0.1; done
  munge -n -S "$SOCKET" | unmunge -S "$SOCKET" >/dev/null 2>&1 \
    || { show_logs; die "munge does not answer on $SOCKET"; }

  if ! live_pid slurmctld >/dev/null; then
    slurmctld -f "$CONF" || { show_logs; die "slurmctld did not start"; }
  fi
  if ! live_pid slurmd >/dev/null; then
    slurmd -f "$CONF" -N "$NODE" || { show_logs; die "slurmd did not start"; }
  fi

  local deadline=$(( $(date +%s) + TIMEOUT ))
  state=""
  while :; do
    state="$(node_state || true)"
    case "$state" in
      idle|mixed|allocated|completing) break ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "cluster: error: node $NODE not idle after ${TIMEOUT}s (state: ${state:-no answer from slurmctld})" >&2
      show_logs
      exit 1
    fi
    sleep 0.2
  done
  t1="$(date +%s.%N)"
  for _ in $(seq 1 20); do
    live_pid slurmctld >/dev/null && live_pid slurmd >/dev/null && break
    sleep 0.1
  done
  say "started munged $(live_pid munged), slurmctld $(live_pid slurmctld), slurmd $(live_pid slurmd) (pid files in $RUN, $MUNGE_DIR)"
  say "node $NODE $state after $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s; logs in $LOG"
  print_env
}

cmd_stop() {
  export SLURM_CONF="$CONF"
  if [ ! -d "$D" ]; then
    say "nothing in $D; nothing to stop"
    return 0
  fi
  if live_pid slurmctld >/dev/null; then
    local jobs
    jobs="$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')"
    if [ -n "${jobs// /}" ]; then
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 1 150); do
        [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
        sleep 0.1
      done
      say "cancelled jobs: $jobs"
    fi
  fi
  stop_daemon slurmd
  stop_daemon slurmctld
  stop_daemon munged
  say "stopped (state kept in $D; remove the folder for a clean start)"
}

cmd_status() {
  export SLURM_CONF="$CONF"
  local name pid ok=0
  for name in munged slurmctld slurmd; do
    if pid="$(live_pid "$name")"; then
      say "$name running (pid $pid)"
    else
      say "$name not running"
      ok=3
    fi
  done
  if live_pid slurmctld >/dev/null; then
    sinfo -N -o '%N %P %T %c %m' 2>/dev/null || true
    squeue -o '%.12i %.9P %.20j %.10T %.10M %R' 2>/dev/null || true
  fi
  return "$ok"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|status|env   (folder: \$HARNESS_SLURM_DIR, default /tmp/harness-slurm)" >&2; exit 2 ;;
esac

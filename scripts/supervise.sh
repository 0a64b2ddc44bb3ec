#!/usr/bin/env bash
# Keeps what `make up` starts running: a process that exits is started again, with back-off,
# and a line in .local/log/supervisor.log (and in the process's own log).
#
#   scripts/supervise.sh run NAME -- COMMAND...       a foreground program: a supervisor runs it
#                                                     and starts it again whenever it exits
#   scripts/supervise.sh watch NAME CHECK START       a self-daemonising server (PostgreSQL,
#                                                     Kafka, Cassandra, nginx): every few seconds
#                                                     `bash -c CHECK`; when it fails, `bash -c START`
#   scripts/supervise.sh stop NAME | stop-all         the supervisor, then its program (TERM,
#                                                     KILL after SUPERVISE_STOP_TIMEOUT s); a
#                                                     watched server is left to its own `stop`
#   scripts/supervise.sh status                       one line per supervisor
#
# Each supervisor is recorded in RUN/NAME.pid and its current program in RUN/NAME.child, as
# "PID STARTTIME" (the kernel's start time tells a recycled PID from ours). A program's output
# goes to LOG/NAME.log. Back-off: 1 s after the first exit, doubling up to SUPERVISE_BACKOFF_MAX
# (30 s); back to 1 s once a run lasted SUPERVISE_STABLE (30 s). RUN and LOG: SUPERVISE_RUN
# and SUPERVISE_LOG, default .local/run and .local/log. SUPERVISE_EVERY: watch period (3 s).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=${SUPERVISE_RUN:-$ROOT/.local/run}
LOG=${SUPERVISE_LOG:-$ROOT/.local/log}
BACKOFF_MAX=${SUPERVISE_BACKOFF_MAX:-30}
STABLE=${SUPERVISE_STABLE:-30}
EVERY=${SUPERVISE_EVERY:-3}
STOP_TIMEOUT=${SUPERVISE_STOP_TIMEOUT:-15}
SELF=$ROOT/scripts/supervise.sh

usage() {
  sed -n '5,14p' "$0" | sed 's/^#   //' >&2
  exit 2
}

# The kernel's start time of PID (field 22 of /proc/PID/stat), empty for a gone or zombie one.
starttime() {
  local stat rest fields
  { stat=$(<"/proc/$1/stat"); } 2>/dev/null || return 0
  rest=${stat##*) }
  read -r -a fields <<<"$rest"
  [[ ${fields[0]} == Z ]] || echo "${fields[19]}"
}

record() {  # file pid
  echo "$2 $(starttime "$2")" >"$1"
}

# The PID recorded in FILE if that very process still runs (a bare PID: if it runs at all).
recorded_pid() {
  local pid since
  [[ -f $1 ]] || return 1
  read -r pid since <"$1" || true
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -n $(starttime "$pid") ]] || return 1
  [[ -z ${since:-} || $(starttime "$pid") == "$since" ]] || return 1
  echo "$pid"
}

note() {  # name, message
  local line
  line="$(date '+%Y-%m-%d %H:%M:%S') supervisor: $1: $2"
  echo "$line" >>"$LOG/supervisor.log"
  echo "$line" >>"$LOG/$1.log"
}

# TERM, wait up to STOP_TIMEOUT, then KILL; returns once PID is gone.
terminate() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    [[ -n $(starttime "$pid") ]] || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# ------------------------------------------------------------------ the supervisors' loops

run_loop() {  # name -- command...
  local name=$1 child="" sleeper="" rc started ran backoff=1
  shift 2
  on_stop() {
    [[ -n $sleeper ]] && kill "$sleeper" 2>/dev/null
    if [[ -n $child ]]; then
      terminate "$child"
      wait "$child" 2>/dev/null || true
    fi
    rm -f "$RUN/$name.child"
    note "$name" "stopped"
    exit 0
  }
  trap on_stop TERM INT
  trap '' HUP
  while :; do
    started=$SECONDS
    "$@" >>"$LOG/$name.log" 2>&1 &
    child=$!
    record "$RUN/$name.child" "$child"
    note "$name" "started pid $child: $*"
    rc=0
    wait "$child" || rc=$?
    child=""
    ran=$((SECONDS - started))
    ((ran >= STABLE)) && backoff=1
    note "$name" "exited with status $rc after ${ran}s; starting it again in ${backoff}s"
    sleep "$backoff" &
    sleeper=$!
    wait "$sleeper" || true
    sleeper=""
    backoff=$((backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2))
  done
}

watch_loop() {  # name check start
  local name=$1 check=$2 start=$3 job="" backoff=0 rc
  on_stop() {
    [[ -n $job ]] && terminate "$job"
    note "$name" "watch stopped"
    exit 0
  }
  trap on_stop TERM INT
  trap '' HUP
  note "$name" "watching: $check"
  while :; do
    sleep "$((backoff > EVERY ? backoff : EVERY))" &
    job=$!
    wait "$job" || true
    job=""
    bash -c "$check" >/dev/null 2>&1 && { backoff=0; continue; }
    note "$name" "not running; starting it again: $start"
    rc=0
    bash -c "$start" >>"$LOG/$name.log" 2>&1 &
    job=$!
    wait "$job" || rc=$?
    job=""
    if [[ $rc -eq 0 ]]; then
      note "$name" "running again"
      backoff=0
    else
      backoff=$((backoff == 0 ? 1 : backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2))
      note "$name" "start failed with status $rc; next try in ${backoff}s"
    fi
  done
}

# ------------------------------------------------------------------------------ commands

launch() {  # name, mode (_run or _watch), the loop's arguments
  local name=$1 mode=$2 pid
  shift 2
  if pid=$(recorded_pid "$RUN/$name.pid"); then
    echo "$name already running (supervisor pid $pid)"
    return 0
  fi
  [[ $mode == _run ]] && : >"$LOG/$name.log"  # a fresh log per `make up`; restarts append
  # Its own session: a Ctrl-C in the shell that ran `make up` does not reach it.
  setsid "$SELF" "$mode" "$name" "$@" </dev/null >>"$LOG/supervisor.log" 2>&1 &
  record "$RUN/$name.pid" "$!"
}

cmd_stop() {  # name
  local name=$1 pid
  if pid=$(recorded_pid "$RUN/$name.pid"); then
    STOP_TIMEOUT=$((STOP_TIMEOUT + 5)) terminate "$pid"  # it stops its program first
  fi
  # a supervisor killed by SIGKILL leaves its program behind: stop that one too
  if pid=$(recorded_pid "$RUN/$name.child"); then
    terminate "$pid"
  fi
  if [[ -f $RUN/$name.pid ]]; then
    echo "stopped $name"
  fi
  rm -f "$RUN/$name.pid" "$RUN/$name.child"
}

cmd_status() {
  local file name pid child
  for file in "$RUN"/*.pid; do
    [[ -e $file ]] || continue
    name=$(basename "$file" .pid)
    if pid=$(recorded_pid "$file"); then
      child=$(recorded_pid "$RUN/$name.child" || echo -)
      echo "$name: supervisor $pid, program $child"
    else
      echo "$name: not running"
    fi
  done
}

[[ $# -ge 1 ]] || usage
mkdir -p "$RUN" "$LOG"
action=$1
shift
case $action in
  run)
    [[ $# -ge 3 && $2 == -- ]] || usage
    name=$1
    shift
    launch "$name" _run "$@"
    ;;
  watch)
    [[ $# -eq 3 ]] || usage
    launch "$1" _watch "${@:2}"
    ;;
  _run) run_loop "$@" ;;
  _watch) watch_loop "$@" ;;
  stop)
    [[ $# -eq 1 ]] || usage
    cmd_stop "$1"
    ;;
  stop-all)
    for file in "$RUN"/*.pid; do
      [[ -e $file ]] && cmd_stop "$(basename "$file" .pid)"
    done
    ;;
  status) cmd_status ;;
  *) usage ;;
esac

#!/usr/bin/env bash
# The edge: one public URL in front of the command service processes and the gateway
# (docs/design.md §2-§3; docs/edge.md). A project-local nginx: config, pid, logs, temp files in DIR.
#
#   scripts/edge.sh start DIR PORT GATEWAY_URL[,GATEWAY_URL...] COMMAND_URL[,COMMAND_URL...]
#   scripts/edge.sh stop DIR
#   scripts/edge.sh status DIR
#
# URLs are http://HOST:PORT. EDGE_WORKERS (default 1) sets nginx's worker_processes.
# Rate limits (requests/s, burst): EDGE_CLIENT_RATE (200) and EDGE_CLIENT_BURST (400) per
# client (bearer token, else address), EDGE_ADDRESS_RATE (1000) and EDGE_ADDRESS_BURST (2000)
# per address; docs/edge.md, "Abuse limits".
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# nginx and curl (the readiness check) are installed when missing: a fresh machine has neither.
tools=$("$HERE/need.sh" nginx curl)
NGINX=${NGINX:-$(head -n 1 <<<"$tools")}
TEMPLATE=$HERE/edge/nginx.conf.template

usage() {
  sed -n '5,7p' "$0" | sed 's/^#   //' >&2
  exit 2
}

# A live process: exists and is not a zombie (a daemonised nginx is reaped by PID 1, late).
alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $state != Z ]]
}

# The running nginx master of DIR, or nothing (a stale pid file is not ours).
running_pid() {
  local dir=$1 pid
  [[ -f $dir/nginx.pid ]] || return 1
  pid=$(<"$dir/nginx.pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-p $dir/ " || return 1
  echo "$pid"
}

# nginx processes of DIR while no master of DIR runs (a master killed by SIGKILL leaves its
# workers running, and they keep the port): known by the files of DIR they hold open.
orphans() {
  local dir=$1 proc
  for proc in /proc/[0-9]*; do
    [[ $(cat "$proc/comm" 2>/dev/null) == nginx ]] || continue
    if find "$proc/fd" -maxdepth 1 -lname "$dir/*" 2>/dev/null | grep -q .; then
      echo "${proc#/proc/}"
    fi
  done
}

stop_orphans() {
  local dir=$1 pids
  pids=$(orphans "$dir")
  [[ -n $pids ]] || return 0
  echo "edge: stopping nginx processes left by a dead master: $(echo $pids)" >&2
  # shellcheck disable=SC2086
  kill -QUIT $pids 2>/dev/null || true
  for _ in $(seq 1 50); do
    [[ -z $(orphans "$dir") ]] && return 0
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
}

# http://host:port[/] -> "        server host:port;"
server_line() {
  local url=$1 hostport
  hostport=${url#http://}
  hostport=${hostport%%/*}
  [[ $hostport =~ ^[A-Za-z0-9._-]+:[0-9]+$ ]] || {
    echo "edge: not an http://HOST:PORT url: $url" >&2
    exit 2
  }
  printf '        server %s;\n' "$hostport"
}

cmd_start() {
  [[ $# -eq 4 ]] || usage
  local dir port gateway commands servers="" gateways="" url conf pid limit name value
  mkdir -p "$1"
  dir=$(cd "$1" && pwd)
  port=$2
  gateway=$3
  commands=$4
  [[ $port =~ ^[0-9]+$ ]] || { echo "edge: bad port: $port" >&2; exit 2; }
  if pid=$(running_pid "$dir"); then
    echo "edge already running (pid $pid) in $dir"
    return 0
  fi
  stop_orphans "$dir"
  IFS=',' read -r -a urls <<<"$commands"
  [[ ${#urls[@]} -gt 0 ]] || usage
  for url in "${urls[@]}"; do
    servers+=$(server_line "$url")$'\n'
  done
  IFS=',' read -r -a urls <<<"$gateway"
  [[ ${#urls[@]} -gt 0 ]] || usage
  for url in "${urls[@]}"; do
    gateways+=$(server_line "$url")$'\n'
  done
  mkdir -p "$dir/temp"
  conf=$(<"$TEMPLATE")
  if [[ $(id -u) -eq 0 ]]; then
    # As root nginx would run its workers as "nobody", who cannot write temp files in DIR.
    conf=${conf//@USER@/user root;}
  else
    conf=${conf//@USER@/# not root: workers run as $(id -un)}
  fi
  conf=${conf//@DIR@/$dir}
  conf=${conf//@PORT@/$port}
  conf=${conf//@WORKERS@/${EDGE_WORKERS:-1}}
  for limit in CLIENT_RATE:200 CLIENT_BURST:400 ADDRESS_RATE:1000 ADDRESS_BURST:2000; do
    name=EDGE_${limit%%:*}
    value=${!name:-${limit#*:}}
    [[ $value =~ ^[1-9][0-9]*$ ]] || { echo "edge: $name must be a positive integer" >&2; exit 2; }
    conf=${conf//@${limit%%:*}@/$value}
  done
  conf=${conf//@COMMAND_SERVERS@/${servers%$'\n'}}
  conf=${conf//@GATEWAY_SERVERS@/${gateways%$'\n'}}
  printf '%s\n' "$conf" >"$dir/nginx.conf"
  "$NGINX" -t -q -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log"
  "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log"
  for _ in $(seq 1 50); do
    if pid=$(running_pid "$dir") && curl -fsS -o /dev/null "http://127.0.0.1:$port/edge/health" 2>/dev/null; then
      echo "edge up on http://127.0.0.1:$port (pid $pid)"
      return 0
    fi
    sleep 0.1
  done
  echo "edge did not come up; see $dir/error.log" >&2
  tail -n 20 "$dir/error.log" >&2 || true
  return 1
}

cmd_stop() {
  [[ $# -eq 1 ]] || usage
  local dir pid
  dir=$(cd "$1" 2>/dev/null && pwd) || { echo "edge not running"; return 0; }
  if ! pid=$(running_pid "$dir"); then
    stop_orphans "$dir"
    rm -f "$dir/nginx.pid"
    echo "edge not running"
    return 0
  fi
  # Graceful: finish in-flight requests, then exit (same as nginx -s quit).
  "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" -s quit 2>/dev/null || kill -QUIT "$pid"
  for _ in $(seq 1 100); do
    alive "$pid" || { echo "edge stopped (pid $pid)"; return 0; }
    sleep 0.1
  done
  kill -TERM "$pid" 2>/dev/null || true
  sleep 1
  if alive "$pid"; then kill -KILL "$pid"; fi
  rm -f "$dir/nginx.pid"
  echo "edge killed (pid $pid)"
}

cmd_status() {
  [[ $# -eq 1 ]] || usage
  local dir pid
  dir=$(cd "$1" 2>/dev/null && pwd) || { echo "edge not running"; return 3; }
  if pid=$(running_pid "$dir"); then
    echo "edge running (pid $pid), config $dir/nginx.conf"
  else
    echo "edge not running"
    return 3
  fi
}

[[ $# -ge 1 ]] || usage
action=$1
shift
case $action in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  *) usage ;;
esac

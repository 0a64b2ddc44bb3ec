#!/usr/bin/env bash
# A local single-node Apache Cassandra 5.0 (the CQL stand-in for ScyllaDB), without Docker.
#
#   scripts/cassandra.sh fetch             jars from Maven Central into .local/cassandra/libs
#                                          (cassandra-all + runtime deps; no-op when current)
#   scripts/cassandra.sh start DIR PORT    write DIR/cassandra.yaml, start the node on
#                                          127.0.0.1:PORT (CQL), wait until it answers a CQL
#                                          query, print 127.0.0.1:PORT on the last line
#   scripts/cassandra.sh stop DIR          SIGTERM (Cassandra drains), SIGKILL after a timeout
#   scripts/cassandra.sh status DIR        "running 127.0.0.1:PORT" (exit 0) or "stopped" (3)
#
# DIR holds everything: cassandra.yaml, data, commit log, logs/ and cassandra.pid. `start` on a
# running node only waits for it and prints its address; a stopped node restarts on the PORT
# asked for now. The inter-node ports (storage_port, ssl_storage_port) are free ones picked
# here, so a second node or a leftover on 7000 never collides; they are kept across restarts
# when still free. Environment: CASSANDRA_HEAP (1G), CASSANDRA_START_TIMEOUT (240 s),
# CASSANDRA_STOP_TIMEOUT (60 s), CASSANDRA_JAVA (a JDK 17 `java`), CASSANDRA_PYTHON (a Python
# with cassandra-driver, default .venv/bin/python), CASSANDRA_STORAGE_PORT, CASSANDRA_MLOCK=1
# (let Cassandra pin its memory, see launch), CASSANDRA_JVM_OPTS (extra JVM flags, last).
# See docs/local-stack-cassandra.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
POM=$ROOT/scripts/maven/cassandra-pom.xml
CONF=$ROOT/scripts/cassandra
HOME_DIR=$ROOT/.local/cassandra
LIBS=$HOME_DIR/libs
MAIN_CLASS=org.apache.cassandra.service.CassandraDaemon

usage() {
  echo "usage: $0 fetch | start DIR PORT | stop DIR | status DIR" >&2
  exit 2
}

log() { echo "cassandra.sh: $*" >&2; }

apt_install() {
  "$ROOT/scripts/need.sh" --packages "$@"
}

is_java17() {  # path
  local settings
  [[ -x "$1" ]] || return 1
  settings=$("$1" -XshowSettings:properties -version 2>&1) || return 1
  grep -qE '^\s*java\.specification\.version = 17$' <<<"$settings"
}

# The JDK 17 `java`, found by path (Cassandra 5.0 runs on 11 or 17 only; PATH may hold a newer
# JDK). Debian's java-17-openjdk-<arch> directory first, then any other 17 under /usr/lib/jvm.
find_java17() {
  if [[ -n "${CASSANDRA_JAVA:-}" ]]; then
    is_java17 "$CASSANDRA_JAVA" || { log "CASSANDRA_JAVA=$CASSANDRA_JAVA is not Java 17"; exit 1; }
    echo "$CASSANDRA_JAVA"
    return
  fi
  local candidate attempt
  for attempt in 1 2; do
    for candidate in /usr/lib/jvm/java-17-openjdk-*/bin/java /usr/lib/jvm/*17*/bin/java; do
      if is_java17 "$candidate"; then
        echo "$candidate"
        return
      fi
    done
    [[ $attempt -eq 1 ]] && apt_install openjdk-17-jre-headless
  done
  log "no Java 17 found under /usr/lib/jvm"
  exit 1
}

pom_version() {
  sed -n 's:.*<cassandra.version>\(.*\)</cassandra.version>.*:\1:p' "$POM"
}

fetch() {
  local version stamp want tmp
  version=$(pom_version)
  want="cassandra-all $version pom $(sha256sum "$POM" | cut -c1-16)"
  stamp=$LIBS/.fetched
  if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -f $LIBS/cassandra-all-$version.jar ]]; then
    return
  fi
  mkdir -p "$HOME_DIR"
  # One fetch at a time (make up and a test run may both ask); re-check after the wait.
  exec 9>"$HOME_DIR/.fetch.lock"
  flock 9
  if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -f $LIBS/cassandra-all-$version.jar ]]; then
    exec 9>&-
    return
  fi
  "$ROOT/scripts/need.sh" mvn:maven >/dev/null
  log "fetching org.apache.cassandra:cassandra-all:$version and its runtime dependencies"
  tmp=$HOME_DIR/libs.tmp.$$
  rm -rf "$tmp"
  # Output to a file: Debian's Maven 3.8.7 prints stray ANSI resets even with -B -q.
  mvn -B -q -f "$POM" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >"$HOME_DIR/fetch.log" 2>&1 ||
    { cat "$HOME_DIR/fetch.log" >&2; rm -rf "$tmp"; log "mvn copy-dependencies failed"; exit 1; }
  [[ -f $tmp/cassandra-all-$version.jar ]] || { log "cassandra-all-$version.jar missing"; exit 1; }
  echo "$want" >"$tmp/.fetched"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  exec 9>&-
}

python_bin() {
  if [[ -n "${CASSANDRA_PYTHON:-}" ]]; then
    echo "$CASSANDRA_PYTHON"
  elif [[ -x $ROOT/.venv/bin/python ]]; then
    echo "$ROOT/.venv/bin/python"
  else
    echo python3
  fi
}

free_port() {
  python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_is_free() {  # port
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

yaml_value() {  # key, file
  sed -n "s/^$1: *//p" "$2" | head -n 1
}

# True while PID runs (a zombie, not yet reaped by its new parent, counts as gone).
alive() {  # pid
  local state
  state=$(sed -n 's/^.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# PID of the node if it is alive and really ours (a reused PID would not name DIR).
running_pid() {
  local pidfile=$DATA/cassandra.pid pid
  [[ -f $pidfile ]] || return 1
  pid=$(cat "$pidfile")
  [[ -n $pid ]] && alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-Dcassandra.storagedir=$DATA " || return 1
  echo "$pid"
}

render_yaml() {  # port, storage port, ssl storage port
  sed -e "s|@DIR@|$DATA|g" -e "s|@PORT@|$1|g" \
    -e "s|@STORAGE_PORT@|$2|g" -e "s|@SSL_STORAGE_PORT@|$3|g" \
    "$CONF/cassandra.yaml" >"$DATA/cassandra.yaml.tmp"
  mv "$DATA/cassandra.yaml.tmp" "$DATA/cassandra.yaml"
}

pick_storage_ports() {  # prints "storage ssl"
  local storage ssl
  storage=${CASSANDRA_STORAGE_PORT:-}
  if [[ -z $storage && -f $DATA/cassandra.yaml ]]; then
    storage=$(yaml_value storage_port "$DATA/cassandra.yaml")
    [[ -n $storage ]] && ! port_is_free "$storage" && storage=
  fi
  [[ -n $storage ]] || storage=$(free_port)
  ssl=$(free_port)
  while [[ $ssl == "$storage" ]]; do ssl=$(free_port); done
  echo "$storage $ssl"
}

launch() {  # port
  local port=$1 java heap storage ssl jamm
  java=$(find_java17)
  heap=${CASSANDRA_HEAP:-1G}
  read -r storage ssl < <(pick_storage_ports)
  port_is_free "$port" || { log "port $port on 127.0.0.1 is already in use"; exit 1; }
  mkdir -p "$DATA"/{data,commitlog,hints,saved_caches,cdc_raw,logs,triggers,tmp}
  render_yaml "$port" "$storage" "$ssl"
  local opts=()
  mapfile -t opts < <(grep -E '^-' "$CONF/jvm-server.options" | sed 's/[[:space:]]*$//')
  local extra=()
  read -r -a extra <<<"${CASSANDRA_JVM_OPTS:-}"
  opts+=("${extra[@]}")
  # jamm measures object sizes for memtable accounting; bin/cassandra loads it as an agent.
  for jamm in "$LIBS"/jamm-*.jar; do
    [[ -f $jamm ]] && opts+=("-javaagent:$jamm")
    break
  done
  # Cassandra mlockall()s its whole address space at start. Root (CAP_IPC_LOCK) succeeds, and
  # with -Xms = -Xmx that faults in and pins the entire heap: ~1.5 GiB RSS before the first
  # query. There is no swap to protect against here, so the node runs without that capability
  # (mlockall then fails with ENOMEM: one WARN line) and takes memory as it uses it.
  # CASSANDRA_MLOCK=1 keeps Cassandra's behaviour.
  local prefix=()
  if [[ ${CASSANDRA_MLOCK:-0} != 1 && $(id -u) -eq 0 ]] && command -v setpriv >/dev/null &&
    setpriv --bounding-set=-ipc_lock --inh-caps=-ipc_lock true 2>/dev/null; then
    prefix=(setpriv --bounding-set=-ipc_lock --inh-caps=-ipc_lock)
  fi
  : >"$DATA/logs/stdout.log"
  # setsid: the node gets its own session, so a Ctrl-C aimed at pytest or make does not
  # kill it mid-write; stop goes through `stop DIR`.
  (
    cd "$DATA"
    exec setsid "${prefix[@]}" "$java" "-Xms$heap" "-Xmx$heap" "${opts[@]}" \
      -XX:ErrorFile="$DATA/logs/hs_err_%p.log" \
      -XX:HeapDumpPath="$DATA/logs" \
      -Djava.io.tmpdir="$DATA/tmp" \
      -Dcassandra.config="file://$DATA/cassandra.yaml" \
      -Dcassandra.storagedir="$DATA" \
      -Dcassandra.logdir="$DATA/logs" \
      -Dcassandra.triggers_dir="$DATA/triggers" \
      -Dlogback.configurationFile="$CONF/logback.xml" \
      -Dcassandra-foreground=yes \
      -cp "$LIBS/*" "$MAIN_CLASS" \
      </dev/null >>"$DATA/logs/stdout.log" 2>&1
  ) &
  echo $! >"$DATA/cassandra.pid"
}

# Waits until the node answers `SELECT release_version FROM system.local` over CQL (driver,
# protocol v4), or it exits, or the timeout passes.
wait_ready() {  # pid, port
  local py
  py=$(python_bin)
  "$py" - "$1" "$2" "${CASSANDRA_START_TIMEOUT:-240}" <<'PY'
import logging
import socket
import sys
import time
import warnings

warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)
try:
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import RoundRobinPolicy
except ImportError:
    print("cassandra-driver is not installed for this Python (pip install cassandra-driver)",
          file=sys.stderr)
    sys.exit(4)

pid, port, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout


def alive() -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


while True:
    if not alive():
        print("the node exited during start-up", file=sys.stderr)
        sys.exit(3)
    with socket.socket() as probe:
        probe.settimeout(1)
        listening = probe.connect_ex(("127.0.0.1", port)) == 0
    if listening:
        profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=10)
        cluster = Cluster(["127.0.0.1"], port=port, protocol_version=4,
                          execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                          connect_timeout=5, control_connection_timeout=5)
        try:
            row = cluster.connect().execute("SELECT release_version FROM system.local").one()
            print(f"Cassandra {row.release_version} ready", file=sys.stderr)
            sys.exit(0)
        except Exception:
            pass
        finally:
            cluster.shutdown()
    if time.monotonic() > deadline:
        print(f"no CQL answer on 127.0.0.1:{port} after {timeout:.0f} s", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.5)
PY
}

stop_node() {
  local pid i limit
  pid=$(running_pid) || { rm -f "$DATA/cassandra.pid"; return 0; }
  # SIGTERM runs Cassandra's drain (flush memtables, close the commit log): ~5 s here.
  # CASSANDRA_STOP_TIMEOUT=0 skips it (for a node whose DIR is about to be deleted).
  kill -TERM "$pid" 2>/dev/null || true
  limit=$((${CASSANDRA_STOP_TIMEOUT:-60} * 5))
  for ((i = 0; i < limit; i++)); do
    alive "$pid" || break
    sleep 0.2
  done
  if alive "$pid"; then
    [[ $limit -gt 0 ]] && log "node (pid $pid) still up after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      alive "$pid" || break
      sleep 0.2
    done
  fi
  rm -f "$DATA/cassandra.pid"
}

show_failure() {
  log "start-up failed; last lines of $DATA/logs/system.log and stdout.log:"
  tail -n 40 "$DATA/logs/system.log" >&2 2>/dev/null || true
  tail -n 20 "$DATA/logs/stdout.log" >&2 2>/dev/null || true
}

cmd=${1:-}
case "$cmd" in
  fetch)
    fetch
    echo "$LIBS ($(pom_version))"
    ;;
  start)
    [[ -n "${2:-}" && -n "${3:-}" ]] || usage
    DATA=$(realpath -m "$2")
    PORT=$3
    fetch
    if pid=$(running_pid); then
      PORT=$(yaml_value native_transport_port "$DATA/cassandra.yaml")
    else
      launch "$PORT"
      pid=$(cat "$DATA/cassandra.pid")
    fi
    if ! wait_ready "$pid" "$PORT"; then
      show_failure
      stop_node
      exit 1
    fi
    echo "127.0.0.1:$PORT"
    ;;
  stop)
    [[ -n "${2:-}" ]] || usage
    DATA=$(realpath -m "$2")
    stop_node
    ;;
  status)
    [[ -n "${2:-}" ]] || usage
    DATA=$(realpath -m "$2")
    if running_pid >/dev/null; then
      echo "running 127.0.0.1:$(yaml_value native_transport_port "$DATA/cassandra.yaml")"
    else
      echo "stopped"
      exit 3
    fi
    ;;
  *)
    usage
    ;;
esac

#!/usr/bin/env bash
# A local single-node Apache Kafka (KRaft, broker+controller in one JVM), without Docker.
#
#   scripts/kafka.sh fetch                          collect the broker jars from Maven Central
#                                                   into .local/kafka/<version>/libs (once)
#   scripts/kafka.sh start DIR PORT [CONTROLLER_PORT]
#                                                   configure, format and start a broker whose
#                                                   config, data, pid and logs live in DIR; wait
#                                                   until it serves metadata; print the
#                                                   bootstrap address (host:port) on the last line
#   scripts/kafka.sh stop DIR                       SIGTERM, wait, SIGKILL after KAFKA_STOP_TIMEOUT
#   scripts/kafka.sh status DIR                     "running HOST:PORT" (exit 0) or "stopped" (3)
#   scripts/kafka.sh topic DIR NAME PARTITIONS [KEY=VALUE...]
#                                                   create a topic (replication 1) unless it
#                                                   exists with that partition count
#
# Listens on 127.0.0.1 only. Topics are never auto-created (auto.create.topics.enable=false).
# `start` on a running broker is a no-op that prints its address. A stopped DIR restarts with
# its data on the PORT given now; the controller port is kept unless given.
#
# Environment: KAFKA_VERSION, KAFKA_LOG4J_VERSION (the pins below), KAFKA_CACHE_DIR (default
# .local/kafka), KAFKA_HEAP_OPTS (default -Xms256m -Xmx512m), KAFKA_JVM_OPTS (extra flags),
# KAFKA_LOG_LEVEL (root log level, default INFO), KAFKA_START_TIMEOUT (s, default 120),
# KAFKA_STOP_TIMEOUT (s, default 30), KAFKA_PYTHON (an interpreter with confluent-kafka, used
# for the readiness check and `topic`; default .venv/bin/python), JAVA17_HOME (see java.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
KAFKA_VERSION=${KAFKA_VERSION:-4.3.1}
LOG4J_VERSION=${KAFKA_LOG4J_VERSION:-2.25.3}
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.6.1
POM=$HERE/maven/kafka-pom.xml
CACHE=${KAFKA_CACHE_DIR:-$ROOT/.local/kafka}
HOME_DIR=$CACHE/$KAFKA_VERSION # libs/ and the `fetched` stamp
LIBS=$HOME_DIR/libs

usage() {
  sed -n '4,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

die() {
  echo "kafka.sh: $*" >&2
  exit 1
}

# ---------------------------------------------------------------- fetch

stamp_text() {
  echo "kafka=$KAFKA_VERSION log4j=$LOG4J_VERSION pom=$(sha256sum "$POM" | cut -c1-16)"
}

libs_ready() {
  [[ -f "$HOME_DIR/fetched" && "$(cat "$HOME_DIR/fetched")" == "$(stamp_text)" ]]
}

ensure_maven() {
  "$ROOT/scripts/need.sh" mvn:maven >/dev/null
}

fetch() {
  if libs_ready; then
    return 0
  fi
  mkdir -p "$CACHE"
  # One fetch at a time per cache (parallel test workers may all ask at once).
  exec {lock}>"$CACHE/.fetch.lock"
  flock "$lock"
  if libs_ready; then
    exec {lock}>&-
    return 0
  fi
  ensure_maven
  local java_home tmp
  java_home=$("$HERE/java.sh" --home)
  tmp=$(mktemp -d "$CACHE/.fetch-$KAFKA_VERSION.XXXXXX")
  chmod 755 "$tmp"
  echo "kafka.sh: collecting Kafka $KAFKA_VERSION jars from Maven Central into $LIBS" >&2
  if ! JAVA_HOME=$java_home mvn -B -q -Dstyle.color=never -f "$POM" \
    "$DEPENDENCY_PLUGIN:copy-dependencies" -DincludeScope=runtime \
    -DoutputDirectory="$tmp/libs" \
    -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" >"$tmp/mvn.log" 2>&1; then
    cat "$tmp/mvn.log" >&2
    rm -rf "$tmp"
    die "mvn could not collect org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
  fi
  [[ -f "$tmp/libs/kafka_2.13-$KAFKA_VERSION.jar" && -f "$tmp/libs/log4j-core-$LOG4J_VERSION.jar" ]] ||
    { rm -rf "$tmp"; die "the collected jars lack kafka_2.13 or log4j-core"; }
  rm -f "$tmp/mvn.log"
  stamp_text >"$tmp/fetched"
  rm -rf "$HOME_DIR"
  mv "$tmp" "$HOME_DIR"
  exec {lock}>&-
}

# ---------------------------------------------------------------- process helpers

# Alive and not a zombie (a broker whose parent is gone may linger as one until reaped).
alive() {
  local pid=$1 stat
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ "${stat%% *}" != "Z" ]]
}

# The PID in DIR/kafka.pid if that process is alive and is the broker of DIR.
broker_pid() {
  local pid cmdline
  [[ -f "$DIR/kafka.pid" ]] || return 1
  pid=$(cat "$DIR/kafka.pid")
  [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ "$cmdline" == *"kafka.Kafka $DIR/server.properties"* ]] || return 1
  echo "$pid"
}

prop() {  # prop FILE KEY: the value of KEY in a .properties file we wrote ("" if none)
  [[ -f "$1" ]] || return 0
  sed -n "s/^$2=//p" "$1" | tail -n 1
}

bootstrap_of() {
  local advertised
  advertised=$(prop "$DIR/server.properties" advertised.listeners)
  echo "${advertised#PLAINTEXT://}"
}

free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

python_with_client() {  # an interpreter that can import confluent_kafka, or nothing
  local py
  for py in "${KAFKA_PYTHON:-}" "$ROOT/.venv/bin/python" python3; do
    if [[ -n "$py" ]] && "$py" -c 'import confluent_kafka' >/dev/null 2>&1; then
      echo "$py"
      return 0
    fi
  done
  return 1
}

tail_logs() {
  {
    echo "---- $DIR/logs/server.log (errors, then the last 20 lines)"
    grep -E '^\[[^]]*\] (ERROR|FATAL)' "$DIR/logs/server.log" 2>/dev/null | tail -n 10 || true
    echo "..."
    tail -n 20 "$DIR/logs/server.log" 2>/dev/null || true
    echo "---- $DIR/kafka.out"
    tail -n 20 "$DIR/kafka.out" 2>/dev/null || true
  } >&2
}

# ---------------------------------------------------------------- start

new_cluster_id() {  # what `kafka-storage.sh random-uuid` prints, without starting a JVM
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ "$id" == -* ]] || break  # Kafka never issues ids that look like a CLI option
  done
  echo "$id"
}

write_config() {
  local port=$1 cport=$2
  cat >"$DIR/server.properties" <<EOF
# Written by scripts/kafka.sh on every start; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data

# One node: every internal topic has replication factor 1 and min ISR 1, or idempotent
# producers, transactions, consumer groups and share groups fail.
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Fast start for tests and development (the defaults suit big clusters).
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=16777216
num.partitions=1

# Topics are created explicitly (scripts/kafka.sh topic, or an AdminClient).
auto.create.topics.enable=false
EOF
  cat >"$DIR/log4j2.properties" <<EOF
# Written by scripts/kafka.sh: the broker logs to logs/server.log in its directory.
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = $DIR/logs/server.log
appender.file.filePattern = $DIR/logs/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = ${KAFKA_LOG_LEVEL:-INFO}
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
EOF
}

# Waits for the broker to answer a metadata request listing itself; 0 ready, 1 timeout, 2 died.
wait_ready() {
  local pid=$1 bootstrap=$2 timeout=${KAFKA_START_TIMEOUT:-120} py
  if py=$(python_with_client); then
    local rc=0
    "$py" - "$bootstrap" "$pid" "$timeout" <<'PY' || rc=$?
import os
import sys
import time

from confluent_kafka.admin import AdminClient

bootstrap, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])


def alive() -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1].split()[0] != "Z"
    except OSError:
        return False


admin = AdminClient(
    {"bootstrap.servers": bootstrap, "log_level": 0, "reconnect.backoff.max.ms": 200}
)
deadline = time.monotonic() + timeout
while True:
    if not alive():
        sys.exit(2)
    try:
        if admin.list_topics(timeout=1.0).brokers:
            sys.exit(0)
    except Exception:
        pass
    if time.monotonic() > deadline:
        sys.exit(1)
    time.sleep(0.1)
PY
    return "$rc"
  fi
  # No confluent-kafka at hand (bootstrap.sh not run yet): the broker's own "started" line
  # plus an open port is the best we can do without a client.
  echo "kafka.sh: confluent-kafka not importable; readiness falls back to the broker log" >&2
  local deadline=$((SECONDS + timeout)) port=${bootstrap##*:}
  while ((SECONDS < deadline)); do
    alive "$pid" || return 2
    if grep -q 'Kafka Server started' "$DIR/logs/server.log" 2>/dev/null &&
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

start() {
  local port=$1 cport=${2:-} pid
  [[ "$port" =~ ^[0-9]+$ ]] || usage
  if pid=$(broker_pid); then
    echo "kafka.sh: broker in $DIR already running (pid $pid)" >&2
    bootstrap_of
    return 0
  fi
  fetch
  local java
  java=$("$HERE/java.sh")
  mkdir -p "$DIR/data" "$DIR/logs"
  if [[ -z "$cport" ]]; then
    cport=$(prop "$DIR/server.properties" controller.quorum.voters)
    cport=${cport##*:}
    [[ -n "$cport" ]] || cport=$(free_port)
  fi
  [[ "$cport" =~ ^[0-9]+$ && "$cport" != "$port" ]] || die "bad controller port '$cport'"
  write_config "$port" "$cport"

  # log4j2's own shutdown hook would stop logging while Kafka's hook still shuts down.
  local log4j=(-Dlog4j2.configurationFile="$DIR/log4j2.properties" -Dkafka.logs.dir="$DIR/logs"
    -Dlog4j2.shutdownHookEnabled=false)
  if [[ ! -f "$DIR/data/meta.properties" ]]; then
    [[ -f "$DIR/cluster.id" ]] || new_cluster_id >"$DIR/cluster.id"
    # A short-lived JVM: C1 only and the serial GC save about a second here.
    "$java" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "${log4j[@]}" \
      -cp "$LIBS/*" kafka.tools.StorageTool format \
      -t "$(cat "$DIR/cluster.id")" -c "$DIR/server.properties" --ignore-formatted \
      >"$DIR/logs/format.log" 2>&1 || { cat "$DIR/logs/format.log" >&2; die "format failed"; }
  fi

  local heap extra=()
  read -ra heap <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
  read -ra extra <<<"${KAFKA_JVM_OPTS:-}"
  # setsid: the broker outlives this script and ignores Ctrl-C meant for the caller's terminal.
  setsid "$java" "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true "${log4j[@]}" "${extra[@]}" \
    -cp "$LIBS/*" kafka.Kafka "$DIR/server.properties" >"$DIR/kafka.out" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$DIR/kafka.pid"

  local bootstrap=127.0.0.1:$port rc=0
  wait_ready "$pid" "$bootstrap" || rc=$?
  if ((rc != 0)); then
    tail_logs
    if ((rc == 2)); then
      rm -f "$DIR/kafka.pid"
      die "the broker exited during start-up (logs above)"
    fi
    stop
    die "the broker was not ready within ${KAFKA_START_TIMEOUT:-120}s (logs above)"
  fi
  echo "$bootstrap"
}

# ---------------------------------------------------------------- stop, status, topic

stop() {
  local pid
  if ! pid=$(broker_pid); then
    rm -f "$DIR/kafka.pid"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + ${KAFKA_STOP_TIMEOUT:-30}))
  while alive "$pid" && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if alive "$pid"; then
    echo "kafka.sh: broker $pid ignored SIGTERM for ${KAFKA_STOP_TIMEOUT:-30}s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do
      sleep 0.1
    done
  fi
  rm -f "$DIR/kafka.pid"
}

status() {
  if broker_pid >/dev/null; then
    echo "running $(bootstrap_of)"
  else
    echo "stopped"
    exit 3
  fi
}

topic() {
  local name=$1 partitions=$2
  shift 2
  [[ -n "$name" && "$partitions" =~ ^[0-9]+$ ]] || usage
  broker_pid >/dev/null || die "no broker running in $DIR"
  local py
  py=$(python_with_client) || die "topic needs confluent-kafka (run scripts/bootstrap.sh)"
  "$py" - "$(bootstrap_of)" "$name" "$partitions" "$@" <<'PY'
import sys

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, name, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = dict(arg.split("=", 1) for arg in sys.argv[4:])
admin = AdminClient({"bootstrap.servers": bootstrap})
future = admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name]
try:
    future.result(timeout=30)
    print(f"created {name} ({partitions} partitions)", file=sys.stderr)
except KafkaException as exc:
    if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
        raise
    have = len(admin.list_topics(name, timeout=10).topics[name].partitions)
    if have != partitions:
        sys.exit(f"kafka.sh: {name} exists with {have} partitions, not {partitions}")
print(name)
PY
}

# ---------------------------------------------------------------- main

cmd=${1:-}
case "$cmd" in
  fetch)
    fetch
    echo "$LIBS"
    ;;
  start | stop | status | topic)
    [[ -n "${2:-}" ]] || usage
    DIR=$(realpath -m "$2")
    case "$cmd" in
      start) start "${3:-}" "${4:-}" ;;
      stop) stop ;;
      status) status ;;
      topic) topic "${3:-}" "${4:-}" "${@:5}" ;;
    esac
    ;;
  *)
    usage
    ;;
esac

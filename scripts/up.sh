#!/usr/bin/env bash
# Starts the local stack: PostgreSQL (project-local data dir), migrations, the command service.
# Installs what it runs when missing (scripts/need.sh). Everything it starts is supervised
# (scripts/supervise.sh: a process that exits is started again, with back-off, and logged in
# .local/log/supervisor.log) and recorded in .local/run/*.pid, so `make down` stops exactly that.
#
# A second instance beside it (a benchmark's): STACK_DIR (default .local) holds its state
# (run/, log/, pg/, kafka-broker/, cassandra/node/, edge/, jwt-secret; the jar caches stay in
# .local), and the ports below are all settings (PORT, PG_PORT, KAFKA_PORT,
# KAFKA_CONTROLLER_PORT, CASSANDRA_PORT, COMMAND_PORTS, GATEWAY_PORTS, *_METRICS_PORT);
# `STACK_DIR=... scripts/down.sh` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STACK=${STACK_DIR:-$ROOT/.local}
PORT=${PORT:-3000}
PG_PORT=${PG_PORT:-25432}
RUN=$STACK/run
LOG=$STACK/log
export SUPERVISE_RUN=$RUN SUPERVISE_LOG=$LOG
mkdir -p "$RUN" "$LOG"

scripts/bootstrap.sh
# A random signing secret per checkout (never one from the repository), readable by its owner
# only. Every process below gets it; `healthpay token` reads the same file from any shell.
if [[ ! -s $STACK/jwt-secret ]]; then
  (umask 077 && .venv/bin/python -c 'import secrets; print(secrets.token_hex(32))' >"$STACK/jwt-secret")
fi
chmod 600 "$STACK/jwt-secret"
export JWT_SECRET=${JWT_SECRET:-$(cat "$STACK/jwt-secret")} HEALTHPAY_ENV=${HEALTHPAY_ENV:-development}
scripts/need.sh curl >/dev/null
# A server that daemonises itself is watched: `make down` stops the watch, then the server.
watch() {  # name, then the script and its arguments (status DIR / start DIR ...)
  local name=$1 script=$2 dir=$3
  shift 3
  scripts/supervise.sh watch "$name" "$(printf '%q ' "$ROOT/$script" status "$dir")" \
    "$(printf '%q ' "$ROOT/$script" start "$dir" "$@")"
}
# Cassandra (the local CQL stand-in for ScyllaDB) takes the longest: start it first, in parallel.
CASSANDRA_PORT=${CASSANDRA_PORT:-29042}
scripts/cassandra.sh start "$STACK/cassandra/node" "$CASSANDRA_PORT" >"$LOG/cassandra-start.log" 2>&1 &
CASSANDRA_START=$!
export SCYLLA_HOSTS=${SCYLLA_HOSTS:-127.0.0.1:$CASSANDRA_PORT}
# Every WAL segment archived (from a new data directory on): `make backup` + this archive
# restore to any point in time (scripts/backup.sh, docs/runbooks/backup-restore.md).
PG_WAL_ARCHIVE=${PG_WAL_ARCHIVE:-$STACK/wal-archive} scripts/pg.sh start "$STACK/pg" "$PG_PORT"
watch postgresql scripts/pg.sh "$STACK/pg" "$PG_PORT"
export POSTGRES_URL=${POSTGRES_URL:-postgresql://healthpay@127.0.0.1:$PG_PORT/healthpay_ledger}
.venv/bin/healthpay db migrate --only sql

KAFKA_PORT=${KAFKA_PORT:-29092}
export KAFKA_TOPIC=${KAFKA_TOPIC:-healthpay.events.wallet}
scripts/kafka.sh start "$STACK/kafka-broker" "$KAFKA_PORT" "${KAFKA_CONTROLLER_PORT:-29093}"
export KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:$KAFKA_PORT}
# KAFKA_PARTITIONS partitions (infrastructure/settings.py; docs/capacity.md says why 24).
.venv/bin/healthpay kafka create-topic >/dev/null
watch kafka scripts/kafka.sh "$STACK/kafka-broker" "$KAFKA_PORT" "${KAFKA_CONTROLLER_PORT:-29093}"

start() {  # name, then the command
  local name=$1
  shift
  scripts/supervise.sh run "$name" -- "$@"
}

wait "$CASSANDRA_START" || { cat "$LOG/cassandra-start.log" >&2; exit 1; }
watch cassandra scripts/cassandra.sh "$STACK/cassandra/node" "$CASSANDRA_PORT"
.venv/bin/healthpay db migrate --only cql

# One command-service process per core, each owning the cards nginx hashes to it.
IFS=, read -r -a cports <<<"${COMMAND_PORTS:-$(seq -s, 3010 $((3009 + $(nproc))))}"
curls=""
for i in "${!cports[@]}"; do
  start "command-service-$((i + 1))" .venv/bin/healthpay serve-commands --host 127.0.0.1 --port "${cports[$i]}"
  curls+=${curls:+,}http://127.0.0.1:${cports[$i]}
done
start relay .venv/bin/healthpay relay --metrics-port "${RELAY_METRICS_PORT:-3002}"
start projection-worker .venv/bin/healthpay project --metrics-port "${PROJECTION_METRICS_PORT:-3001}"
# One gateway process per core too (reads need no affinity: the edge balances them). GraphQL
# mutations go through the public edge, so they keep the card affinity of REST writes.
IFS=, read -r -a gports <<<"${GATEWAY_PORTS:-$(seq -s, 3100 $((3099 + $(nproc))))}"
gurls=""
for i in "${!gports[@]}"; do
  COMMAND_SERVICE_URL=${COMMAND_SERVICE_URL:-http://127.0.0.1:$PORT} \
    start "gateway-$((i + 1))" .venv/bin/healthpay serve-gateway --port "${gports[$i]}"
  gurls+=${gurls:+,}http://127.0.0.1:${gports[$i]}
done
start balance-projection .venv/bin/healthpay project-balances --metrics-port "${BALANCE_METRICS_PORT:-3003}"
# SMS (docs/notifications.md): off unless asked for, so a local stack never calls Cequens;
# messages are still stored in sms_outbox and logged. SMS_ENABLED=true with CEQUENS_API_KEY
# (and CEQUENS_URL for a sandbox) sends them.
SMS_ENABLED=${SMS_ENABLED:-false} \
  start notifier .venv/bin/healthpay notify --metrics-port "${NOTIFIER_METRICS_PORT:-3004}"

for port in "${cports[@]}" "${gports[@]}"; do
  for _ in $(seq 1 150); do
    curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null || {
    echo "the service on port $port did not become ready; see $LOG/" >&2
    exit 1
  }
done
scripts/edge.sh start "$STACK/edge" "$PORT" "$gurls" "$curls"
watch edge scripts/edge.sh "$STACK/edge" "$PORT" "$gurls" "$curls"

# Prometheus scrapes every process on its own port, under the Kubernetes job names, with the
# alert rules loaded (scripts/prometheus.sh; k8s/monitoring/alerts.yml).
PROMETHEUS_PORT=${PROMETHEUS_PORT:-3090}
if curl -fsS -o /dev/null "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" 2>/dev/null; then
  echo "port $PROMETHEUS_PORT already serves a Prometheus: set PROMETHEUS_PORT" >&2
  exit 1
fi
hostports() { local u=${1//http:\/\//}; echo "${u//\//}"; }
start prometheus scripts/prometheus.sh "$STACK/prometheus" "$PROMETHEUS_PORT" \
  "healthpay-command-service=$(hostports "$curls")" \
  "healthpay-api-gateway=$(hostports "$gurls")" \
  "healthpay-relay=127.0.0.1:${RELAY_METRICS_PORT:-3002}" \
  "healthpay-projection=127.0.0.1:${PROJECTION_METRICS_PORT:-3001}" \
  "healthpay-balances=127.0.0.1:${BALANCE_METRICS_PORT:-3003}" \
  "healthpay-notifier=127.0.0.1:${NOTIFIER_METRICS_PORT:-3004}"
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" >/dev/null || {
  echo "Prometheus did not become ready; see $LOG/" >&2
  exit 1
}

cat <<MSG

HealthPay Ledger is up, on one public URL: http://127.0.0.1:$PORT (nginx)
  REST              http://127.0.0.1:$PORT/api/v1  (writes -> command service, card-affine; reads -> gateway)
  Health            http://127.0.0.1:$PORT/health  (postgres, scylla, kafka)
  GraphQL           http://127.0.0.1:$PORT/graphql  (GraphiQL in a browser; queries, mutations)
  API docs          http://127.0.0.1:$PORT/docs  (OpenAPI: REST reads and writes)
  Command service   ${curls}
  PostgreSQL        $POSTGRES_URL
  Kafka             $KAFKA_BROKERS (topic $KAFKA_TOPIC)
  Gateway           ${gurls}
  Cassandra (CQL)   $SCYLLA_HOSTS (keyspace ${SCYLLA_KEYSPACE:-healthpay_balances})
  Relay metrics     http://127.0.0.1:${RELAY_METRICS_PORT:-3002}/metrics
  Projection metrics http://127.0.0.1:${PROJECTION_METRICS_PORT:-3001}/metrics
  Notifier metrics  http://127.0.0.1:${NOTIFIER_METRICS_PORT:-3004}/metrics  (SMS_ENABLED=${SMS_ENABLED:-false})
  Prometheus        http://127.0.0.1:$PROMETHEUS_PORT  (every process scraped; alerts: /alerts)
  Logs              $LOG/  (restarts: $LOG/supervisor.log; scripts/supervise.sh status)

Get a token:  export TOKEN=\$(.venv/bin/healthpay token --role admin)
Stop:         make down
MSG

#!/usr/bin/env bash
# Stops what `make up` started, by the PIDs it recorded, and the project-local PostgreSQL.
set -uo pipefail
cd "$(dirname "$0")/.."
RUN=.local/run
if [[ -f .local/edge/nginx.pid ]]; then
  scripts/edge.sh stop "$(pwd)/.local/edge" && echo "stopped the edge (nginx)"
fi
for pidfile in "$RUN"/*.pid; do
  [[ -e $pidfile ]] || continue
  pid=$(cat "$pidfile")
  name=$(basename "$pidfile" .pid)
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
done
if [[ -f .local/cassandra/node/cassandra.pid ]]; then
  scripts/cassandra.sh stop "$(pwd)/.local/cassandra/node" && echo "stopped cassandra"
fi
if [[ -f .local/kafka-broker/kafka.pid ]]; then
  scripts/kafka.sh stop "$(pwd)/.local/kafka-broker" && echo "stopped kafka"
fi
if [[ -f .local/pg/PG_VERSION ]]; then
  scripts/pg.sh stop "$(pwd)/.local/pg" && echo "stopped postgresql"
fi

#!/usr/bin/env bash
# Stops what `make up` started: first every supervisor (scripts/supervise.sh; each stops its
# program), so nothing is started again, then the edge and the servers, by their own scripts.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/supervise.sh stop-all
if [[ -f .local/edge/nginx.pid ]]; then
  scripts/edge.sh stop "$(pwd)/.local/edge" && echo "stopped the edge (nginx)"
fi
if [[ -f .local/cassandra/node/cassandra.pid ]]; then
  scripts/cassandra.sh stop "$(pwd)/.local/cassandra/node" && echo "stopped cassandra"
fi
if [[ -f .local/kafka-broker/kafka.pid ]]; then
  scripts/kafka.sh stop "$(pwd)/.local/kafka-broker" && echo "stopped kafka"
fi
if [[ -f .local/pg/PG_VERSION ]]; then
  scripts/pg.sh stop "$(pwd)/.local/pg" && echo "stopped postgresql"
fi

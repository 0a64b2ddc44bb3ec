#!/usr/bin/env bash
# Stops what `make up` started: first every supervisor (scripts/supervise.sh; each stops its
# program), so nothing is started again, then the edge and the servers, by their own scripts.
# STACK_DIR: the state dir the instance was started with (scripts/up.sh; default .local).
set -uo pipefail
cd "$(dirname "$0")/.."
STACK=${STACK_DIR:-$(pwd)/.local}
SUPERVISE_RUN=$STACK/run SUPERVISE_LOG=$STACK/log scripts/supervise.sh stop-all
if [[ -f $STACK/edge/nginx.pid ]]; then
  scripts/edge.sh stop "$STACK/edge" && echo "stopped the edge (nginx)"
fi
if [[ -f $STACK/cassandra/node/cassandra.pid ]]; then
  scripts/cassandra.sh stop "$STACK/cassandra/node" && echo "stopped cassandra"
fi
if [[ -f $STACK/kafka-broker/kafka.pid ]]; then
  scripts/kafka.sh stop "$STACK/kafka-broker" && echo "stopped kafka"
fi
if [[ -f $STACK/pg/PG_VERSION ]]; then
  scripts/pg.sh stop "$STACK/pg" && echo "stopped postgresql"
fi

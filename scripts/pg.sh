#!/usr/bin/env bash
# A local PostgreSQL server for development and tests, without Docker.
#
#   scripts/pg.sh start DIR PORT   initdb into DIR if needed, start on 127.0.0.1:PORT,
#                                  ensure role `healthpay` and database `healthpay_ledger`
#   scripts/pg.sh stop DIR         fast shutdown (PG_STOP_MODE=immediate: a crash-stop, the
#                                  next start recovers from the WAL)
#   scripts/pg.sh status DIR       exit 0 if running
#
# DIR is the data directory; the Unix socket and server.log live inside it too, so nothing
# leaks into /var/run. fsync stays ON unless PG_FSYNC=off (tests only: a ledger benchmark
# without fsync measures nothing). Auth is trust, and the server listens on loopback only.
# PG_WAL_ARCHIVE=ARCHIVE_DIR at the first start (initdb) archives every WAL segment there,
# at least once a minute (archive_timeout): with a base backup, what scripts/backup.sh
# restores to any point in time.
# `start` on a running server is a no-op apart from ensuring the role and database.
set -euo pipefail

usage() {
  echo "usage: $0 start DIR PORT | stop DIR | status DIR" >&2
  exit 2
}

find_bindir() {
  # Newest installed major version wins (sort -V orders 9.6 < 15 < 16).
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -z "$dir" ]]; then
    "$(dirname "$0")/need.sh" --packages postgresql
    dir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$dir"
}

# The server refuses to run as root: as root we act as the `postgres` OS user (created by the
# Debian package); as anyone else we run as ourselves.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

is_running() {
  [[ -f "$1/PG_VERSION" ]] && as_owner "$BINDIR/pg_ctl" status -D "$1" >/dev/null 2>&1
}

init_cluster() {
  local data=$1 port=$2 fsync=${PG_FSYNC:-on}
  mkdir -p "$data"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$data"
  fi
  chmod 0700 "$data"
  local nosync=()
  [[ "$fsync" == "off" ]] && nosync=(--no-sync)
  local out
  out=$(as_owner "$BINDIR/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 "${nosync[@]}" 2>&1) || { echo "$out" >&2; exit 1; }
  # Settings go to a file of our own, included last, so re-running initdb is never needed
  # to change them and the stock postgresql.conf stays untouched.
  {
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $port"
    echo "unix_socket_directories = '$data'"
    echo "fsync = $fsync"
    if [[ "$fsync" == "off" ]]; then
      echo "synchronous_commit = off"
      echo "full_page_writes = off"
    fi
    echo "max_connections = 200"
    echo "shared_buffers = 256MB"
    echo "log_min_messages = warning"
    echo "log_min_duration_statement = -1"
    if [[ -n ${PG_WAL_ARCHIVE:-} ]]; then
      mkdir -p "$PG_WAL_ARCHIVE"
      [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$PG_WAL_ARCHIVE"
      echo "archive_mode = on"
      echo "archive_command = 'test ! -f $PG_WAL_ARCHIVE/%f && cp %p $PG_WAL_ARCHIVE/%f'"
      echo "archive_timeout = 60"
    fi
  } | as_owner tee "$data/healthpay.conf" >/dev/null
  echo "include 'healthpay.conf'" | as_owner tee -a "$data/postgresql.conf" >/dev/null
}

ensure_role_and_db() {
  local data=$1
  local port
  port=$(sed -n "s/^port = //p" "$data/healthpay.conf")
  local psql=("$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres)
  "${psql[@]}" -d postgres -c "DO \$\$BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'healthpay') THEN
        CREATE ROLE healthpay LOGIN SUPERUSER;
      END IF;
    END\$\$;"
  if [[ -z $("${psql[@]}" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'healthpay_ledger'") ]]; then
    "${psql[@]}" -d postgres -c "CREATE DATABASE healthpay_ledger OWNER healthpay"
  fi
}

cmd=${1:-}
[[ -n "$cmd" && -n "${2:-}" ]] || usage
DATA=$(realpath -m "$2")
BINDIR=$(find_bindir)

case "$cmd" in
  start)
    PORT=${3:-}
    [[ -n "$PORT" ]] || usage
    if ! is_running "$DATA"; then
      if [[ -f "$DATA/PG_VERSION" ]]; then
        # A stopped server restarts on the port asked for now, not the one it had before.
        as_owner sed -i "s/^port = .*/port = $PORT/" "$DATA/healthpay.conf"
      else
        init_cluster "$DATA" "$PORT"
      fi
      as_owner "$BINDIR/pg_ctl" start -D "$DATA" -l "$DATA/server.log" -w -t 60 >/dev/null ||
        { tail -n 30 "$DATA/server.log" >&2; exit 1; }
    fi
    ensure_role_and_db "$DATA"
    echo "postgresql://healthpay@127.0.0.1:$(sed -n "s/^port = //p" "$DATA/healthpay.conf")/healthpay_ledger"
    ;;
  stop)
    if is_running "$DATA"; then
      as_owner "$BINDIR/pg_ctl" stop -D "$DATA" -m "${PG_STOP_MODE:-fast}" -w >/dev/null
    fi
    ;;
  status)
    if is_running "$DATA"; then
      echo "running"
    else
      echo "stopped"
      exit 3
    fi
    ;;
  *)
    usage
    ;;
esac

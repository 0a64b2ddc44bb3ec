#!/usr/bin/env bash
# Backups of the event store's PostgreSQL that restore (docs/runbooks.md, "Backup and restore").
#
#   scripts/backup.sh base POSTGRES_URL BACKUP_DIR
#       a base backup (pg_basebackup, WAL streamed in, verified with pg_verifybackup) into
#       BACKUP_DIR/base-<UTC time>; prints its directory
#   scripts/backup.sh restore BASE_DIR DATA_DIR [WAL_ARCHIVE [TARGET_TIME]]
#       a new data directory DATA_DIR from the base backup; with WAL_ARCHIVE (the server's
#       PG_WAL_ARCHIVE, scripts/pg.sh) the server replays the archived WAL when it starts, up
#       to TARGET_TIME (point-in-time recovery, e.g. '2026-12-03 17:40:00+00') or to the end
#       of the archive; then start it: scripts/pg.sh start DATA_DIR PORT
#
# The whole database is restored: events, the relay's checkpoint and the read models, all at
# one moment. The CQL balance tables are not backed up: rebuild them from the restored event
# store (`healthpay projections rebuild balances`). tests/integration/test_backup_restore.py
# is the drill.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

usage() {
  sed -n '4,12p' "$0" | sed 's/^#   //' >&2
  exit 2
}

bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -z $dir ]]; then
    "$HERE/need.sh" --packages postgresql
    dir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$dir"
}

cmd_base() {
  [[ $# -eq 2 ]] || usage
  local url=$1 target
  mkdir -p "$2"
  target=$(cd "$2" && pwd)/base-$(date -u +%Y%m%dT%H%M%SZ)
  "$BINDIR/pg_basebackup" -d "$url" -D "$target" -Fp -X stream -c fast -l healthpay --no-password
  "$BINDIR/pg_verifybackup" -q "$target"
  echo "$target"
}

cmd_restore() {
  [[ $# -ge 2 && $# -le 4 ]] || usage
  local base=$1 data=$2 archive=${3:-} target=${4:-}
  [[ -f $base/PG_VERSION && -f $base/backup_manifest ]] || { echo "backup.sh: $base is no base backup" >&2; exit 2; }
  [[ ! -e $data/PG_VERSION ]] || { echo "backup.sh: $data holds a data directory already" >&2; exit 2; }
  "$BINDIR/pg_verifybackup" -q "$base"
  mkdir -p "$data"
  cp -a "$base/." "$data/"
  rm -f "$data/backup_manifest" "$data/postmaster.pid"
  # A server of scripts/pg.sh keeps its socket in its data directory: the new one's.
  if [[ -f $data/healthpay.conf ]]; then
    sed -i "s|^unix_socket_directories = .*|unix_socket_directories = '$(cd "$data" && pwd)'|" \
      "$data/healthpay.conf"
  fi
  if [[ -n $archive ]]; then
    # postgresql.auto.conf is read last: these win over any other setting of the source.
    {
      echo "# scripts/backup.sh restore: replay the archived WAL, then promote"
      echo "restore_command = 'cp $(cd "$archive" && pwd)/%f %p'"
      if [[ -n $target ]]; then echo "recovery_target_time = '$target'"; fi
      echo "recovery_target_action = 'promote'"
    } >>"$data/postgresql.auto.conf"
    touch "$data/recovery.signal"
  fi
  if [[ $(id -u) -eq 0 ]]; then
    chown -R postgres:postgres "$data"
  fi
  chmod 0700 "$data"
  echo "$data"
}

[[ $# -ge 1 ]] || usage
BINDIR=$(bindir)
action=$1
shift
case $action in
  base) cmd_base "$@" ;;
  restore) cmd_restore "$@" ;;
  *) usage ;;
esac

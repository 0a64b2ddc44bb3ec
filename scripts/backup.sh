#!/usr/bin/env bash
# Backups of the event store's PostgreSQL that restore (docs/runbooks/backup-restore.md):
# `healthpay backup` and `healthpay restore` (cli/backup.py), with PostgreSQL's programs
# installed first when missing.
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
# tests/integration/test_backup_restore.py is the drill.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
HEALTHPAY=$HERE/../.venv/bin/healthpay

usage() {
  sed -n '6,13p' "$0" | sed 's/^#   //' >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 && [[ -z ${PG_BINDIR:-} ]]; then
  "$HERE/need.sh" --packages postgresql >/dev/null
fi
action=$1
shift
case $action in
  base)
    [[ $# -eq 2 ]] || usage
    exec "$HEALTHPAY" backup --url "$1" "$2" ;;
  restore)
    [[ $# -ge 2 && $# -le 4 ]] || usage
    exec "$HEALTHPAY" restore "$1" "$2" ${3:+--wal-archive "$3"} ${4:+--target-time "$4"} ;;
  *) usage ;;
esac

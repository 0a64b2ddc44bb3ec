"""`healthpay backup` and `healthpay restore`: the event store's PostgreSQL, as a base backup
plus the WAL archive (docs/runbooks/backup-restore.md).

The whole database is restored at one moment: events, the relay's checkpoint, the read
models. The CQL balance tables are not backed up: they are rebuilt from the restored event
store (`healthpay projections rebuild balances`), which is the one source of truth.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

# Debian's layout (/usr/lib/postgresql/<major>/bin); PG_BINDIR names another.
_DEBIAN_BINDIRS = "/usr/lib/postgresql"


class BackupError(Exception):
    """What stops a backup or restore, in one line for the operator."""


def bindir() -> Path:
    named = os.environ.get("PG_BINDIR")
    if named:
        return Path(named)
    found = (
        sorted(Path(_DEBIAN_BINDIRS).glob("*/bin"), key=lambda p: int(p.parent.name))
        if Path(_DEBIAN_BINDIRS).is_dir()
        else []
    )
    if not found:
        raise BackupError(
            "no PostgreSQL programs found: set PG_BINDIR or install PostgreSQL"
            " (scripts/need.sh --packages postgresql)"
        )
    return found[-1]


def _run(program: str, *args: str) -> None:
    done = subprocess.run([str(bindir() / program), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{program} failed: {done.stderr.strip() or done.returncode}")


def base_backup(url: str, backups: Path) -> Path:
    """A base backup with the WAL it needs streamed in, verified, in backups/base-<UTC time>."""
    backups.mkdir(parents=True, exist_ok=True)
    target = backups.resolve() / f"base-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    _run(
        "pg_basebackup", "-d", url, "-D", str(target), "-Fp", "-X", "stream", "-c", "fast",
        "-l", "healthpay", "--no-password",
    )  # fmt: skip
    _run("pg_verifybackup", "-q", str(target))
    return target


def restore(
    base: Path, data: Path, wal_archive: Path | None = None, target_time: str | None = None
) -> Path:
    """A new data directory from a verified base backup. With `wal_archive` the server replays
    the archived WAL when it starts (up to `target_time`, or to the archive's end), then
    promotes itself; start it with scripts/pg.sh start DATA PORT."""
    if not (base / "PG_VERSION").is_file() or not (base / "backup_manifest").is_file():
        raise BackupError(f"{base} is no base backup")
    if (data / "PG_VERSION").exists():
        raise BackupError(f"{data} holds a data directory already")
    if target_time and wal_archive is None:
        raise BackupError("a target time needs the WAL archive to replay up to it")
    _run("pg_verifybackup", "-q", str(base))
    shutil.copytree(base, data, symlinks=True, dirs_exist_ok=True)
    for stale in ("backup_manifest", "postmaster.pid"):
        (data / stale).unlink(missing_ok=True)
    _own_socket(data)
    if wal_archive is not None:
        _replay_from(data, wal_archive.resolve(), target_time)
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        for path in data.rglob("*"):
            shutil.chown(path, "postgres", "postgres")
    data.chmod(0o700)
    return data


def _own_socket(data: Path) -> None:
    """A server of scripts/pg.sh keeps its socket in its data directory: the new one's."""
    conf = data / "healthpay.conf"
    if conf.is_file():
        lines = [
            f"unix_socket_directories = '{data.resolve()}'"
            if line.startswith("unix_socket_directories = ")
            else line
            for line in conf.read_text().splitlines()
        ]
        conf.write_text("\n".join(lines) + "\n")


def _replay_from(data: Path, archive: Path, target_time: str | None) -> None:
    # postgresql.auto.conf is read last: these win over any other setting of the source.
    settings = [
        "# healthpay restore: replay the archived WAL, then promote",
        f"restore_command = 'cp {archive}/%f %p'",
        *([f"recovery_target_time = '{target_time}'"] if target_time else []),
        "recovery_target_action = 'promote'",
    ]
    with (data / "postgresql.auto.conf").open("a") as auto:
        auto.write("\n".join(settings) + "\n")
    (data / "recovery.signal").touch()

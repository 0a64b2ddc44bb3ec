"""`healthpay restore` refuses, in one line and before touching anything, what cannot be a
restore."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.backup import BackupError, restore
from cli.main import main


def _base(tmp_path: Path) -> Path:
    base = tmp_path / "base-20261204T000000Z"
    base.mkdir()
    (base / "PG_VERSION").write_text("16\n")
    (base / "backup_manifest").write_text("{}")
    return base


def test_a_directory_that_is_no_base_backup_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="is no base backup"):
        restore(tmp_path, tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_an_existing_data_directory_is_never_overwritten(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "PG_VERSION").write_text("16\n")
    with pytest.raises(BackupError, match="holds a data directory already"):
        restore(_base(tmp_path), data)
    assert (data / "PG_VERSION").read_text() == "16\n"


def test_a_target_time_needs_the_archive(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="needs the WAL archive"):
        restore(_base(tmp_path), tmp_path / "data", target_time="2026-12-04 10:00:00+00")


def test_the_command_line_says_it_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["restore", str(tmp_path), str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err
    assert err == f"healthpay restore: {tmp_path} is no base backup\n"

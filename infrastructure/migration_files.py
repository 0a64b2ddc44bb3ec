"""Migration files shipped inside a package (SQL for PostgreSQL, CQL for ScyllaDB/Cassandra):
read through importlib.resources, so an installed wheel works as well as the source tree, in
name order, each with the checksum its runner records to refuse an edited applied file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class MigrationFile:
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def read_migration_files(package: str, suffix: str) -> list[MigrationFile]:
    root = resources.files(package)
    files = sorted(
        (f for f in root.iterdir() if f.is_file() and f.name.endswith(suffix)),
        key=lambda f: f.name,
    )
    return [MigrationFile(f.name, f.read_text(encoding="utf-8")) for f in files]

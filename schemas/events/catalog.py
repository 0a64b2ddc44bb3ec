"""The committed event schemas, read as package resources (works from a wheel or a checkout)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

PACKAGE = "schemas"
DIRECTORY = "json"
BASE_ID = "https://healthpay.tech/schemas/events/"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_FILENAME = re.compile(
    r"^(?P<event_type>[a-z][a-z_]*(?:\.[a-z][a-z_]*)+)\.v(?P<version>[1-9]\d*)\.json$"
)


@dataclass(frozen=True, order=True, slots=True)
class SchemaRef:
    """One event type at one schema version."""

    event_type: str  # stable dotted name, e.g. "medcard.claim_adjudicated"
    version: int

    @property
    def filename(self) -> str:
        return f"{self.event_type}.v{self.version}.json"

    @property
    def schema_id(self) -> str:
        return BASE_ID + self.filename

    @classmethod
    def from_filename(cls, filename: str) -> SchemaRef | None:
        match = _FILENAME.match(filename)
        if match is None:
            return None
        return cls(match["event_type"], int(match["version"]))


def directory() -> Traversable:
    return files(PACKAGE).joinpath(DIRECTORY)


def committed() -> tuple[SchemaRef, ...]:
    """Every committed schema, sorted by event type and version."""
    found = (SchemaRef.from_filename(entry.name) for entry in directory().iterdir())
    return tuple(sorted(ref for ref in found if ref is not None))


def latest(event_type: str) -> SchemaRef:
    versions = [ref for ref in committed() if ref.event_type == event_type]
    if not versions:
        raise LookupError(f"no schema committed for {event_type}")
    return versions[-1]


def load(event_type: str, version: int) -> dict[str, Any]:
    """The schema as a fresh dict (callers may modify it)."""
    document: dict[str, Any] = json.loads(_text(SchemaRef(event_type, version).filename))
    return document


@cache
def _text(filename: str) -> str:
    resource = directory().joinpath(filename)
    if not resource.is_file():
        raise LookupError(f"no committed schema {filename}")
    return resource.read_text(encoding="utf-8")

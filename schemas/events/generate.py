"""(Re)write the committed event schemas from the pydantic models in `domain.events`.

    python -m schemas.events.generate            # write new versions; refuse to change old ones
    python -m schemas.events.generate --check    # exit 1 if a committed schema is stale/missing

A committed `<event_type>.v<N>.json` is published language: if the model changed, bump the
event's `schema_version` (and add an upcaster) instead of rewriting it. `--overwrite` exists
only for a version that was never released.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from domain.events import EVENT_TYPES, DomainEvent
from schemas.events.catalog import JSON_SCHEMA_DIALECT, SchemaRef

DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / "json"
# Every Decimal in an event is an EGP amount or a percentage quantized to two places
# (domain.money), serialised with str(): "350.00", "-35.00", never 3.5E+2 nor a JSON number.
TWO_PLACE_DECIMAL = r"^-?(0|[1-9][0-9]*)\.[0-9]{2}$"


class EventJsonSchema(GenerateJsonSchema):
    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        if self.mode == "serialization":
            return {"type": "string", "pattern": TWO_PLACE_DECIMAL}
        return super().decimal_schema(schema)


def ref_of(cls: type[DomainEvent]) -> SchemaRef:
    return SchemaRef(cls.event_type, cls.schema_version)


def schema_for(cls: type[DomainEvent]) -> dict[str, Any]:
    """The schema of `cls.payload()`: serialization mode, so money is a string as on the wire."""
    ref = ref_of(cls)
    body = cls.model_json_schema(mode="serialization", schema_generator=EventJsonSchema)
    return {
        **body,
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": ref.schema_id,
        "title": ref.event_type,
        "x-event-type": ref.event_type,
        "x-schema-version": ref.version,
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def expected_files() -> dict[str, str]:
    """File name -> content, for the current version of every event type."""
    return {ref_of(cls).filename: render(schema_for(cls)) for cls in EVENT_TYPES.values()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.events.generate", description=__doc__)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIRECTORY, help="output directory")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="only compare, write nothing")
    mode.add_argument(
        "--overwrite", action="store_true", help="rewrite changed files (unreleased versions only)"
    )
    args = parser.parse_args(argv)
    out: Path = args.dir

    stale: list[str] = []
    written: list[str] = []
    for filename, content in sorted(expected_files().items()):
        path = out / filename
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == content:
            continue
        if args.check or (current is not None and not args.overwrite):
            stale.append(filename)
            continue
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(filename)

    for filename in written:
        print(f"wrote {out / filename}")
    for filename in stale:
        what = "missing" if not (out / filename).is_file() else "differs from its model"
        print(f"{out / filename}: {what}", file=sys.stderr)
    if stale and not args.check:
        print(
            "A committed schema version never changes: bump the event's schema_version "
            "(and add an upcaster), or pass --overwrite for a version never released.",
            file=sys.stderr,
        )
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())

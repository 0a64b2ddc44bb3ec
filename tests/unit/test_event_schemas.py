"""The committed JSON Schemas match the event models, and real payloads validate against them.

If this fails after a change to domain/events.py: the payload shape changed. Bump the event's
`schema_version` (and add an upcaster), then run `python -m schemas.events.generate`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from domain.events import EVENT_TYPES, DomainEvent, MedCardActivated
from schemas.events import catalog
from schemas.events.generate import (
    DEFAULT_DIRECTORY,
    expected_files,
    main,
    ref_of,
    render,
    schema_for,
)
from tests.unit.builders import T0
from tests.unit.scenarios import every_event

EVENTS = every_event()


def validator_for(event_type: str, version: int) -> Any:
    schema = catalog.load(event_type, version)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors(event_type: str, payload: dict[str, Any]) -> list[str]:
    validator = validator_for(event_type, EVENT_TYPES[event_type].schema_version)
    return [error.message for error in validator.iter_errors(payload)]


def sample(event_type: str) -> DomainEvent:
    return next(e for e in EVENTS if e.event_type == event_type)


@pytest.mark.parametrize("cls", EVENT_TYPES.values(), ids=lambda c: c.event_type)
def test_the_committed_schema_is_the_models_schema(cls: type[DomainEvent]) -> None:
    ref = ref_of(cls)
    assert ref in catalog.committed(), (
        f"{ref.filename} missing: run python -m schemas.events.generate"
    )
    committed = catalog.load(ref.event_type, ref.version)
    assert committed == schema_for(cls), (
        f"{ref.filename} no longer matches {cls.__name__}: bump schema_version and regenerate"
    )
    assert (DEFAULT_DIRECTORY / ref.filename).read_text(encoding="utf-8") == render(committed)


@pytest.mark.parametrize("ref", catalog.committed(), ids=lambda r: r.filename)
def test_every_committed_schema_is_well_formed(ref: catalog.SchemaRef) -> None:
    schema = catalog.load(ref.event_type, ref.version)
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == catalog.BASE_ID + ref.filename
    assert schema["title"] == ref.event_type
    assert (schema["x-event-type"], schema["x-schema-version"]) == (ref.event_type, ref.version)
    assert (schema["type"], schema["additionalProperties"]) == ("object", False)
    assert ref.event_type in EVENT_TYPES, "a schema for an event type that no longer exists"
    assert ref.version <= EVENT_TYPES[ref.event_type].schema_version


def test_the_catalog_lists_exactly_the_files_in_the_directory() -> None:
    names = {p.name for p in DEFAULT_DIRECTORY.iterdir() if p.suffix == ".json"}
    assert {ref.filename for ref in catalog.committed()} == names
    assert {ref.filename for ref in catalog.committed()} >= set(expected_files())
    assert catalog.latest("medcard.claim_adjudicated").event_type == "medcard.claim_adjudicated"
    with pytest.raises(LookupError):
        catalog.latest("medcard.teleported")
    with pytest.raises(LookupError):
        catalog.load("medcard.activated", 99)


def test_schema_file_names() -> None:
    ref = catalog.SchemaRef.from_filename("medcard.claim_adjudicated.v12.json")
    assert ref == catalog.SchemaRef("medcard.claim_adjudicated", 12)
    for name in (
        "medcard.claim_adjudicated.json",
        "x.v1.json",
        "medcard.issued.v0.json",
        "a.b.v1.txt",
    ):
        assert catalog.SchemaRef.from_filename(name) is None


def test_load_returns_a_copy() -> None:
    schema = catalog.load("medcard.activated", 1)
    schema["title"] = "changed"
    assert catalog.load("medcard.activated", 1)["title"] == "medcard.activated"


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.event_type)
def test_real_payloads_validate_against_the_committed_schema(event: DomainEvent) -> None:
    assert errors(event.event_type, event.payload()) == []


@pytest.mark.parametrize(
    ("event_type", "mutate"),
    [
        ("medcard.activated", lambda p: p.pop("at")),
        ("medcard.activated", lambda p: p.update(extra=True)),
        ("medcard.claim_adjudicated", lambda p: p.update(covered_amount=315.0)),
        ("medcard.claim_adjudicated", lambda p: p.update(covered_amount="315")),
        ("medcard.claim_adjudicated", lambda p: p.update(covered_amount="315.000")),
        ("medcard.claim_adjudicated", lambda p: p.update(decision="maybe")),
        ("medcard.claim_adjudicated", lambda p: p.update(claim_id="not-a-uuid")),
        ("medcard.claim_adjudicated", lambda p: p["postings"][0].update(amount=-315)),
        ("medcard.claim_adjudicated", lambda p: p["items"][0].pop("drug_code")),
        ("medcard.issued", lambda p: p.update(expiry_date="15/01/2027")),
        ("medcard.issued", lambda p: p.update(status="EXPIRED")),
        ("medcard.issued", lambda p: p["primary_holder"].update(beneficiary_id=None)),
        ("wallet.topped_up", lambda p: p.update(amount=None)),
    ],
)
def test_malformed_payloads_do_not_validate(event_type: str, mutate: Any) -> None:
    payload = copy.deepcopy(sample(event_type).payload())
    assert errors(event_type, payload) == []
    mutate(payload)
    assert errors(event_type, payload) != []


def test_generate_check_passes_on_the_committed_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0
    assert capsys.readouterr().err == ""


def test_generate_writes_missing_files_and_never_rewrites_a_committed_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    assert list(tmp_path.iterdir()) == []
    assert main(["--dir", str(tmp_path)]) == 0
    for name, content in expected_files().items():
        assert (tmp_path / name).read_text(encoding="utf-8") == content
        assert content == (DEFAULT_DIRECTORY / name).read_text(encoding="utf-8")

    changed = tmp_path / ref_of(MedCardActivated).filename
    changed.write_text('{"title": "edited by hand"}\n', encoding="utf-8")
    capsys.readouterr()
    assert main(["--dir", str(tmp_path)]) == 1
    assert "bump the event's schema_version" in capsys.readouterr().err
    assert changed.read_text(encoding="utf-8") == '{"title": "edited by hand"}\n'
    assert main(["--overwrite", "--dir", str(tmp_path)]) == 0
    assert main(["--check", "--dir", str(tmp_path)]) == 0


def test_schema_ids_are_unique_and_versioned() -> None:
    ids = [catalog.load(r.event_type, r.version)["$id"] for r in catalog.committed()]
    assert len(ids) == len(set(ids))
    assert all(
        i.endswith(f".v{r.version}.json") for i, r in zip(ids, catalog.committed(), strict=True)
    )


def test_the_at_of_an_event_is_a_date_time_string() -> None:
    payload = MedCardActivated(at=T0).payload()
    assert payload == {"at": "2026-01-15T10:00:00Z"}
    assert errors("medcard.activated", payload) == []

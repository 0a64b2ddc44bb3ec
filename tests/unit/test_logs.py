"""The one logging setup (infrastructure/logs.py): JSON lines, the correlation id of the
request, personal numbers masked in every message and field, LOG_LEVEL for ours only."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import orjson
import pytest

from infrastructure.eventstore.port import RecordedEvent
from infrastructure.logs import CURRENT_CORRELATION_ID, configure_logging, event_fields, mask
from tests.isolation import isolated_settings

# Made-up values of each kind, not any real person's.
NATIONAL_ID = "29001150100457"
MOBILE = "+201098761234"
CARD = "6048123412349876"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"nid {NATIONAL_ID}", "nid **********0457"),
        (f"Key (national_id)=({NATIONAL_ID})", "Key (national_id)=(**********0457)"),
        (f"phone {MOBILE}.", "phone +********1234."),
        ("phone 0020 10 9876 1234", "phone **** ** **** 1234"),
        ("call 01098761234", "call *******1234"),
        ("mobile 010 9876 1234", "mobile *** **** 1234"),
        (f"card {CARD}", "card ************9876"),
        ("card 6048-1234-1234-9876", "card ****-****-****-9876"),
        (f"?nationalId={NATIONAL_ID}&x=1", "?nationalId=**********0457&x=1"),
    ],
)
def test_each_kind_of_personal_number_is_masked_but_its_last_four_digits(
    text: str, masked: str
) -> None:
    assert mask(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "request a3f0123456789012345678bcdef01234",  # an nginx request id: hex, digits inside
        f"event {uuid4()} at position 1234567 of 2026-12-04T18:40:08.781+00:00",
        "epoch ms 1764873600123, 13 digits; 15 digits 123456789012345",
        "not a mobile: +20 2 1234 5678 (a Cairo landline), 0145678901",
    ],
)
def test_ids_positions_and_other_numbers_are_left_alone(text: str) -> None:
    assert mask(text) == text


@pytest.fixture
def root_restored() -> Iterator[None]:
    """configure_logging replaces the root logger's handlers: put the session's back."""
    root = logging.getLogger()
    ours = logging.getLogger("healthpay")
    handlers, level, our_level = list(root.handlers), root.level, ours.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        ours.setLevel(our_level)
        logging.captureWarnings(False)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.usefixtures("root_restored")
def test_a_record_is_one_json_line_with_the_requests_correlation_id() -> None:
    out = io.StringIO()
    configure_logging("serve-commands", "INFO", "json", out)
    token = CURRENT_CORRELATION_ID.set("req-42")
    try:
        logging.getLogger("healthpay.command_service").info("claim %s", "booked")
    finally:
        CURRENT_CORRELATION_ID.reset(token)
    logging.getLogger("healthpay.relay").warning("no request here")
    first, second = _lines(out)
    assert {k: first[k] for k in ("level", "logger", "message", "process", "correlation_id")} == {
        "level": "INFO",
        "logger": "healthpay.command_service",
        "message": "claim booked",
        "process": "serve-commands",
        "correlation_id": "req-42",
    }
    assert datetime.fromisoformat(first["time"]).tzinfo is not None
    assert "correlation_id" not in second


@pytest.mark.usefixtures("root_restored")
def test_personal_numbers_are_masked_in_arguments_fields_and_tracebacks() -> None:
    out = io.StringIO()
    configure_logging("project", "DEBUG", "json", out)
    log = logging.getLogger("healthpay.projections")
    log.debug(
        "refused %s",
        NATIONAL_ID,
        extra={"phone": MOBILE, "nested": {"cards": [CARD], 7: int(NATIONAL_ID)}},
    )
    try:
        raise ValueError(f"duplicate national id {NATIONAL_ID}")
    except ValueError:
        log.exception("failed for %s", MOBILE)
    text = out.getvalue()
    for value in (NATIONAL_ID, MOBILE, CARD, MOBILE.removeprefix("+")):
        assert value not in text
    refused, failed = _lines(out)
    assert refused["message"] == "refused **********0457"
    assert refused["phone"] == "+********1234"
    assert refused["nested"] == {"cards": ["************9876"], "7": "**********0457"}
    assert "ValueError: duplicate national id **********0457" in failed["exception"]


@pytest.mark.usefixtures("root_restored")
def test_log_level_applies_to_ours_and_libraries_stay_at_info() -> None:
    out = io.StringIO()
    configure_logging("relay", "DEBUG", "json", out)
    logging.getLogger("healthpay.relay").debug("ours")
    logging.getLogger("cassandra.cluster").debug("theirs")
    logging.getLogger("uvicorn.error").info("theirs, at info")
    assert [line["message"] for line in _lines(out)] == ["ours", "theirs, at info"]
    configure_logging("relay", "WARNING", "json", out := io.StringIO())
    logging.getLogger("healthpay.relay").info("not wanted")
    assert out.getvalue() == ""


@pytest.mark.usefixtures("root_restored")
def test_the_text_format_is_one_readable_line() -> None:
    out = io.StringIO()
    configure_logging("project", "INFO", "text", out)
    logging.getLogger("healthpay.balances").info("projected %s", NATIONAL_ID, extra={"v": 3})
    (line,) = out.getvalue().splitlines()
    assert line.endswith("INFO    healthpay.balances projected **********0457 v=3")


@pytest.mark.usefixtures("root_restored")
def test_a_second_setup_replaces_its_own_handler_and_no_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    first = configure_logging("db", "INFO", "json", io.StringIO())  # (and any earlier one)
    foreign = logging.NullHandler()  # as a test session's own capture handler
    root.addHandler(foreign)
    others = [h for h in root.handlers if h is not first]
    second = configure_logging("db", "INFO", "json")  # default: sys.stderr at each write
    assert root.handlers == [second, *others]  # first: the others see the records masked
    assert foreign in others
    logging.getLogger("healthpay.cli").info("to the stderr of now")
    assert orjson.loads(capsys.readouterr().err)["message"] == "to the stderr of now"


def test_an_event_is_named_with_its_correlation_id() -> None:
    event = RecordedEvent(
        position=9,
        event_id=uuid4(),
        aggregate_id=uuid4(),
        aggregate_type="medcard",
        event_type="medcard.claim_adjudicated",
        schema_version=1,
        version=4,
        data={},
        metadata={"correlation_id": "req-7"},
        timestamp=datetime.now(UTC),
    )
    fields = event_fields(event)
    assert fields["correlation_id"] == "req-7"
    assert (fields["event_id"], fields["version"], fields["position"]) == (
        str(event.event_id),
        4,
        9,
    )


def test_log_settings_read_any_case_and_refuse_unknown_values() -> None:
    settings = isolated_settings(log_level="debug", log_format="TEXT")
    assert (settings.log_level, settings.log_format) == ("DEBUG", "text")
    assert isolated_settings().log_level == "INFO"
    assert isolated_settings().log_format == "json"
    with pytest.raises(ValueError, match=r"(?i)log_level"):
        isolated_settings(log_level="loud")


@pytest.mark.usefixtures("root_restored")
def test_every_request_of_the_services_logs_with_its_correlation_id() -> None:
    # The gateway's reads and GraphQL, as much as the command service's writes: the app class
    # both services are built on sets the id for everything the request logs, on its fast
    # routes (/api) and on FastAPI's own (/graphql, /health).
    from fastapi.testclient import TestClient
    from prometheus_client import CollectorRegistry
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from infrastructure.http.fast_routes import FastRoutesApp
    from infrastructure.http.metrics import HttpMetrics

    out = io.StringIO()
    configure_logging("serve-gateway", "INFO", "json", out)

    async def seen(_: Request) -> JSONResponse:
        logging.getLogger("healthpay.gateway").info("read")
        return JSONResponse({"seen": CURRENT_CORRELATION_ID.get()})

    app = FastRoutesApp()
    app.add_route("/other", seen)
    app.configure_fast_routes(
        ["/api"], [Route("/api/read", seen)], HttpMetrics(CollectorRegistry(), "test"), ()
    )
    asked = [("/api/read", "edge-req-7"), ("/other", "edge-req-8"), ("/api/read", "x" * 101)]
    with TestClient(app) as client:
        answers = [client.get(path, headers={"X-Correlation-Id": cid}) for path, cid in asked]
        answers.append(client.get("/api/read"))
    assert [a.json()["seen"] for a in answers] == ["edge-req-7", "edge-req-8", None, None]
    assert CURRENT_CORRELATION_ID.get() is None  # reset after the request
    lines = [line for line in _lines(out) if line["message"] == "read"]
    assert [line.get("correlation_id") for line in lines] == [
        "edge-req-7",
        "edge-req-8",
        None,
        None,
    ]

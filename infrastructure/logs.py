"""One logging setup for every process: JSON lines on stderr, personal numbers masked.

`configure_logging` is called once at start by every `healthpay` command (cli/main.py). It
installs ONE handler on the root logger; every logger propagates to it (uvicorn's too: the
servers pass `log_config=None`), so `Masking`, the filter on that handler, is the one place
where national ids, mobile numbers and card numbers are taken out of what is logged.

A line is one JSON object: `time` (UTC, ms), `level`, `logger`, `message`, `process` (the
command: serve-commands, relay, project, ...), `pid`, `correlation_id` when known, then the
record's own fields (`extra=`: event ids, versions, positions) and `exception`. The
correlation id is the edge's X-Request-ID (or the caller's X-Correlation-Id), stored in each
event's metadata and carried by the Kafka envelope, so one claim can be followed from the edge
to both projections (README, "Logs").

LOG_LEVEL applies to the healthpay.* loggers; libraries stay at INFO or above (their DEBUG
output would drown a trace). LOG_FORMAT=text is for a developer's terminal.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson

from infrastructure.eventstore.port import RecordedEvent

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["json", "text"]

# The request's correlation id, set by the command service for the request's own task.
CURRENT_CORRELATION_ID: ContextVar[str | None] = ContextVar("correlation_id", default=None)

# 16-digit card numbers (optionally in groups of 4), 14-digit national ids, and Egyptian
# mobile numbers in the forms people write them (+20 / 0020 / 0, then 1[0125] and 8 digits).
# A number glued to letters is not one of them: request ids are 32 hex characters, and a run
# of digits inside one must not be masked (the edge logs it unmasked: the trace would break).
_PERSONAL = re.compile(
    r"(?<![0-9A-Za-z])(?:[0-9]{4}(?:[ -]?[0-9]{4}){3}|[0-9]{14})(?![0-9A-Za-z])"
    r"|(?<![0-9A-Za-z+])(?:\+20|0020|0)[ -]?1[0125](?:[ -]?[0-9]){8}(?![0-9A-Za-z])"
)
_KEEP = 4  # trailing digits left readable (enough to tell two numbers apart on a call)

# The attributes every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_FORMATTER = logging.Formatter()
_OURS = "_healthpay_log_handler"  # marks the handler configure_logging installed


def _hide(match: re.Match[str]) -> str:
    chars = list(match.group(0))
    hidden = sum(c.isdigit() for c in chars) - _KEEP
    for i, c in enumerate(chars):
        if hidden <= 0:
            break
        if c.isdigit():
            chars[i] = "*"
            hidden -= 1
    return "".join(chars)


def mask(text: str) -> str:
    """`text` with every personal number's digits but the last 4 replaced by `*`."""
    return _PERSONAL.sub(_hide, text)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        text = str(value)
        hidden = mask(text)
        return value if hidden == text else hidden
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(v) for v in value]
    return mask(str(value))


class Masking(logging.Filter):
    """Masks the message (formatted with its arguments), every `extra` field, the traceback
    and the stack of a record; the record is changed in place, for every handler after."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad arguments: still logged (masked), never raised at the caller
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = mask(message)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD:
                setattr(record, key, _masked(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


def _fields(record: logging.LogRecord, process: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
        "process": process,
        "pid": record.process,
    }
    correlation = CURRENT_CORRELATION_ID.get()
    if correlation is not None:
        doc["correlation_id"] = correlation
    for key, value in vars(record).items():
        if key not in _STANDARD:
            doc[key] = value
    if record.exc_info and not record.exc_text:
        record.exc_text = _FORMATTER.formatException(record.exc_info)
    if record.exc_text:
        doc["exception"] = record.exc_text
    if record.stack_info:
        doc["stack"] = record.stack_info
    return doc


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(
            _fields(record, self.process), default=str, option=orjson.OPT_NON_STR_KEYS
        ).decode()


class TextFormatter(logging.Formatter):
    """For a developer's terminal: `time LEVEL logger message key=value ...`."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        doc = _fields(record, self.process)
        head = f"{doc.pop('time')} {doc.pop('level'):<7} {doc.pop('logger')} {doc.pop('message')}"
        doc.pop("process"), doc.pop("pid")
        exception = doc.pop("exception", None)
        rest = " ".join(f"{k}={v}" for k, v in doc.items())
        line = f"{head} {rest}" if rest else head
        return f"{line}\n{exception}" if exception else line


# librdkafka writes its own log lines straight to stderr, not JSON and not masked, unless the
# client is given a logger: every Kafka client of ours is ("logger": KAFKA_CLIENT_LOG). They
# come out of the client's poll, consume and flush calls.
KAFKA_CLIENT_LOG = logging.getLogger("librdkafka")


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a line is written (as logging's last resort
    does), so a stream replaced later (pytest's capture) is never written to once closed."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(
    process: str, level: LogLevel = "INFO", fmt: LogFormat = "json", stream: TextIO | None = None
) -> logging.Handler:
    """Installs the one masked handler on the root logger, writing to `stream` (default:
    stderr), in place of one an earlier call installed; returns it. Call it first thing in
    every process. Handlers it did not install are left alone (a test session's own), after
    it."""
    handler = _Stderr() if stream is None else logging.StreamHandler(stream)
    handler.addFilter(Masking())
    handler.setFormatter(JsonFormatter(process) if fmt == "json" else TextFormatter(process))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    setattr(handler, _OURS, True)
    # First: its filter masks the record in place, so any handler after it sees it masked.
    root.handlers.insert(0, handler)
    numeric = logging.getLevelName(level)
    root.setLevel(max(numeric, logging.INFO))
    logging.getLogger("healthpay").setLevel(numeric)
    logging.captureWarnings(True)
    return handler


def event_fields(event: RecordedEvent) -> dict[str, Any]:
    """How a log line names an event (one place, so every process names it alike)."""
    return {
        "event_id": str(event.event_id),
        "event_type": event.event_type,
        "aggregate_id": str(event.aggregate_id),
        "version": event.version,
        "position": event.position,
        "correlation_id": event.metadata.get("correlation_id"),
    }

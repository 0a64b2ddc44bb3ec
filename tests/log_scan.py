"""No national id or phone number the tests use may reach a log: a pytest plugin that checks.

What is scanned: every log record the test process emits (a handler on the root logger,
formatted with its arguments and any traceback), every line the servers the tests start write
(the command services, relays and workers under .local/log, from where each file stood when
the session began; PostgreSQL's, Kafka's and Cassandra's logs, handed over by their harnesses
before they remove their directories: `scan_server_logs`).

What is searched for: every national id and phone number the tests use, collected from the
test builders (`personal`) and from the literals in the tests' own sources (14-digit ids,
Egyptian mobile numbers), each phone also in the form the service stores (+201XXXXXXXXX).

At the end of the session it prints how many lines it scanned and values it searched, and
fails the session (exit status 1) if any value was found, naming the file and line.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from domain.identity import IdentityError, normalize_mobile

REPO = Path(__file__).resolve().parents[1]
SERVER_LOGS = REPO / ".local" / "log"
TESTS = REPO / "tests"
# A national id: 14 digits, century 2 or 3; a mobile number as the tests spell them.
_NATIONAL_ID = re.compile(r"(?<![0-9])[23][0-9]{13}(?![0-9])")
_MOBILE = re.compile(r"(?<![0-9+])(?:\+20|0020|0)?1[0-9](?:[ -]?[0-9]){8}(?![0-9])")
_STRING_LITERAL = re.compile(r"\"([^\"\n]{10,24})\"|'([^'\n]{10,24})'")


@dataclass(slots=True)
class _Scan:
    values: set[str] = field(default_factory=set)
    records: list[str] = field(default_factory=list)
    server_lines: list[tuple[str, str]] = field(default_factory=list)  # (source, line)
    offsets: dict[Path, int] = field(default_factory=dict)


_scan = _Scan()


def personal(value: str) -> str:
    """Registers a national id or phone number a test builder made; returns it."""
    _scan.values.add(value)
    return value


def scan_server_logs(paths: Iterable[Path], source: str, scan: _Scan = _scan) -> None:
    """Takes in the lines of a server's log files (before its harness deletes them)."""
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        scan.server_lines += [(f"{source}:{path.name}", line) for line in text.splitlines()]


class _Capture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            _scan.records.append(self.format(record))
        except Exception:  # a record that cannot be formatted is still scanned raw
            _scan.records.append(f"{record.msg!r} {record.args!r}")


_handler = _Capture(level=logging.NOTSET)
_handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))


def _from_sources() -> set[str]:
    found: set[str] = set()
    for source in TESTS.rglob("*.py"):
        for match in _STRING_LITERAL.finditer(source.read_text()):
            literal = match.group(1) or match.group(2)
            found.update(_NATIONAL_ID.findall(literal))
            found.update(m.group(0) for m in _MOBILE.finditer(literal))
    return found


def _forms(value: str) -> set[str]:
    forms = {value}
    with contextlib.suppress(IdentityError):  # not a mobile number
        forms.add(normalize_mobile(value))
    return forms


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(_handler)
    if SERVER_LOGS.is_dir():
        _scan.offsets = {path: path.stat().st_size for path in SERVER_LOGS.glob("*.log")}


def _server_lines(scan: _Scan) -> list[tuple[str, str]]:
    lines = list(scan.server_lines)
    if scan is _scan and SERVER_LOGS.is_dir():
        for path in sorted(SERVER_LOGS.glob("*.log")):
            with path.open("rb") as log:
                log.seek(scan.offsets.get(path, 0))
                text = log.read().decode(errors="replace")
            lines += [(str(path.relative_to(REPO)), line) for line in text.splitlines()]
    return lines


def findings(scan: _Scan = _scan) -> tuple[int, int, list[str]]:
    """(lines scanned, values searched, where a value was found)."""
    values = {form for value in scan.values | _from_sources() for form in _forms(value)}
    lines = [("test process log", record) for record in scan.records] + _server_lines(scan)
    found = [
        f"{source}: {value[:4]}… in {line[:200]!r}"
        for source, line in lines
        for value in values
        if value in line
    ]
    return len(lines), len(values), found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    logging.getLogger().removeHandler(_handler)
    scanned, searched, found = findings()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter is not None else print
    if reporter is not None:
        reporter.ensure_newline()
    write(
        f"log scan: {scanned} log lines scanned for {searched} national ids and phone"
        f" numbers the tests used: {len(found)} found"
    )
    for where in found[:20]:
        write(f"  personal data in a log: {where}")
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

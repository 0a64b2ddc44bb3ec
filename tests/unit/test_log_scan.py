"""The log scan (tests/log_scan.py) finds what it is there to find, in every form and source,
and does not cry wolf: checked on a scan of its own, so this session's scan stays clean."""

from __future__ import annotations

import logging
from pathlib import Path

from tests.log_scan import _Capture, _Scan, findings, scan_server_logs


def _scan_with(records: list[str], values: set[str]) -> _Scan:
    scan = _Scan()
    scan.values |= values
    scan.records += records
    return scan


def test_a_national_id_in_a_log_record_is_found() -> None:
    scan = _scan_with(["healthpay.x ERROR refused 29001150100123 for card"], {"29001150100123"})
    scanned, searched, found = findings(scan)
    assert scanned == 1
    assert searched >= 1
    assert len(found) == 1
    assert "29001150100123" not in found[0].split(" in ")[0]  # the report itself masks it


def test_a_phone_number_is_found_in_the_form_the_service_stores() -> None:
    scan = _scan_with(["stored +201098765432"], {"010 9876 5432"})
    assert len(findings(scan)[2]) == 1


def test_the_literals_of_the_test_sources_are_searched_too() -> None:
    # "31203090100123" is only a literal in tests/api/test_medcards.py, never registered here
    assert len(findings(_scan_with(["leak 31203090100123"], set()))[2]) == 1


def test_clean_lines_find_nothing() -> None:
    scan = _scan_with(["card 6048123412341234 claimed at position 29001"], {"29001150100123"})
    assert findings(scan)[2] == []


def test_server_logs_and_formatted_records_are_scanned(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("LOG: ok\nDETAIL: Key (national_id)=(29001150100993) already exists.\n")
    scan = _scan_with([], {"29001150100993"})
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "nid %s", ("29001150100993",), None)
    scan.records.append(_Capture().format(record))
    scan_server_logs([log], "postgresql", scan)
    assert len(findings(scan)[2]) == 2

"""Ids are RFC 9562 version-7 UUIDs: right version and variant, ordered by time, unique."""

from __future__ import annotations

import time
import uuid

from command_service.ids import new_id


def test_new_ids_are_version_7_with_the_rfc_variant() -> None:
    value = new_id()
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_the_first_48_bits_are_the_unix_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = new_id()
    after = time.time_ns() // 1_000_000
    assert before <= value.int >> 80 <= after


def test_ids_from_different_milliseconds_sort_by_time_and_never_repeat() -> None:
    earlier = new_id()
    time.sleep(0.002)
    later = new_id()
    assert earlier < later
    assert len({new_id() for _ in range(10_000)}) == 10_000

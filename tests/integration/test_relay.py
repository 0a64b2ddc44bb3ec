"""The relay's tail, checkpoint and lock, on a real PostgreSQL (publisher: a list)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.types.json import Jsonb

from command_service.relay.publisher import ListPublisher
from command_service.relay.relay import Relay
from command_service.relay.tail import load_checkpoint
from infrastructure.eventstore.log_reads import LOG_START as START

pytestmark = pytest.mark.integration

_INSERT = """
INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, version, event_data,
                    timestamp, schema_version, metadata)
VALUES (%s, %s, 'medcard', 'test.happened', %s, %s, now(), 1, '{}')
"""


def _insert(conn: psycopg.Connection[tuple[object, ...]], stream: UUID, version: int) -> None:
    conn.execute(_INSERT, (uuid4(), stream, version, Jsonb({"v": version})))


@pytest.fixture
def autocommit(postgres_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


def test_an_open_transaction_holds_back_later_commits_and_nothing_is_skipped(
    postgres_url: str, autocommit: psycopg.Connection[tuple[object, ...]]
) -> None:
    relay = Relay(postgres_url, ListPublisher())
    published = relay.publisher.published  # type: ignore[attr-defined]
    early, late = uuid4(), uuid4()
    with psycopg.connect(postgres_url) as slow:  # a transaction that started first...
        _insert(slow, early, 1)
        for version in (1, 2, 3):  # ...while later ones commit around it
            _insert(autocommit, late, version)
        checkpoint, count = relay.step(autocommit, START)
        # The later commits have higher positions, but publishing them now would let the
        # slow transaction's event land behind the checkpoint, never to be read.
        assert count == 0
        slow.commit()
    checkpoint, count = relay.step(autocommit, checkpoint)
    assert count == 4
    assert [(e.aggregate_id, e.version) for e in published] == [
        (early, 1),
        (late, 1),
        (late, 2),
        (late, 3),
    ]
    assert relay.step(autocommit, checkpoint)[1] == 0


def test_positions_committed_out_of_order_within_an_aggregate_stay_in_version_order(
    postgres_url: str, autocommit: psycopg.Connection[tuple[object, ...]]
) -> None:
    relay = Relay(postgres_url, ListPublisher())
    stream = uuid4()
    checkpoint = START
    seen: list[int] = []
    for version in range(1, 21):
        with psycopg.connect(postgres_url) as conn:
            # Burn positions in another transaction that rolls back, so positions have gaps.
            _insert(conn, uuid4(), 1)
            conn.rollback()
            _insert(conn, stream, version)
            conn.commit()
        checkpoint, _ = relay.step(autocommit, checkpoint)
    seen = [e.version for e in relay.publisher.published]  # type: ignore[attr-defined]
    assert seen == list(range(1, 21))


def test_a_failed_publish_keeps_the_checkpoint_and_a_restart_resumes_from_it(
    postgres_url: str, autocommit: psycopg.Connection[tuple[object, ...]]
) -> None:
    stream = uuid4()
    for version in (1, 2):
        _insert(autocommit, stream, version)
    publisher = ListPublisher()
    relay = Relay(postgres_url, publisher, batch_size=1)
    publisher.fail_next = True
    assert relay.step(autocommit, START) == (START, 0)
    assert load_checkpoint(autocommit, "kafka") == START
    checkpoint, _ = relay.step(autocommit, START)
    assert load_checkpoint(autocommit, "kafka") == checkpoint

    restarted = Relay(postgres_url, ListPublisher(), batch_size=10)
    restarted_checkpoint, count = restarted.step(autocommit, load_checkpoint(autocommit, "kafka"))
    assert count == 1
    assert [e.version for e in publisher.published + restarted.publisher.published] == [1, 2]  # type: ignore[attr-defined]
    assert restarted_checkpoint > checkpoint


def test_the_lag_is_the_oldest_unpublished_events_age_and_grows_while_kafka_is_down(
    postgres_url: str, autocommit: psycopg.Connection[tuple[object, ...]]
) -> None:
    stream = uuid4()
    autocommit.execute(
        _INSERT.replace("now()", "now() - interval '1 minute'"), (uuid4(), stream, 1, Jsonb({}))
    )
    _insert(autocommit, stream, 2)
    publisher = ListPublisher()
    relay = Relay(postgres_url, publisher, batch_size=10)
    publisher.fail_next = True
    assert relay.step(autocommit, START) == (START, 0)
    behind = relay.metrics.lag._value.get()
    assert 59 < behind < 120  # the minute-old event, though the publish failed
    checkpoint, count = relay.step(autocommit, START)
    assert count == 2
    assert relay.step(autocommit, checkpoint) == (checkpoint, 0)
    assert relay.metrics.lag._value.get() == 0  # nothing left to publish


def test_one_relay_is_active_and_a_standby_takes_over_when_it_goes(
    postgres_url: str, autocommit: psycopg.Connection[tuple[object, ...]]
) -> None:
    first, second = ListPublisher(), ListPublisher()
    stop_first, stop_second = threading.Event(), threading.Event()
    relays = [
        Relay(postgres_url, first, idle_wait=0.01),
        Relay(postgres_url, second, idle_wait=0.01),
    ]
    threads = [
        threading.Thread(target=relays[0].run, args=(stop_first,)),
        threading.Thread(target=relays[1].run, args=(stop_second,)),
    ]
    threads[0].start()
    _wait(lambda: relays[0].metrics.active._value.get() == 1)
    threads[1].start()
    stream = uuid4()
    _insert(autocommit, stream, 1)
    _wait(lambda: len(first.published) == 1)
    assert second.published == []  # standing by

    stop_first.set()  # the active relay goes away; its lock goes with its connection
    threads[0].join(10)
    _insert(autocommit, stream, 2)
    _wait(lambda: len(second.published) == 1)
    assert [e.version for e in first.published + second.published] == [1, 2]
    stop_second.set()
    threads[1].join(10)


def _wait(condition: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_transaction_spanning_later_commits_is_read_whole_even_one_event_at_a_time(
    postgres_url: str, autocommit: psycopg.Connection[tuple[object, ...]]
) -> None:
    relay = Relay(postgres_url, ListPublisher(), batch_size=1)
    slow_stream, quick_stream = uuid4(), uuid4()
    with psycopg.connect(postgres_url) as slow:
        _insert(slow, slow_stream, 1)  # lowest position, lowest transaction id
        _insert(autocommit, quick_stream, 1)  # middle position, higher transaction id
        _insert(slow, slow_stream, 2)  # highest position, but the older transaction
        slow.commit()
    checkpoint = START
    for _ in range(5):
        checkpoint, _ = relay.step(autocommit, checkpoint)
    published = [(e.aggregate_id, e.version) for e in relay.publisher.published]  # type: ignore[attr-defined]
    assert published == [(slow_stream, 1), (slow_stream, 2), (quick_stream, 1)]

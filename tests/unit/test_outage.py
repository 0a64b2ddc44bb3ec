"""The outage clock every worker uses to ride out a lost store (infrastructure/outage.py)."""

from __future__ import annotations

import logging

import pytest

from infrastructure.outage import EXIT_OUTAGE, Outage, OutageTooLong, exit_after_outage


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def outage(budget: float = 10.0) -> tuple[Outage, Clock]:
    clock = Clock()
    return Outage("postgresql", budget, clock=clock, jitter=lambda: 1.0), clock


def test_delays_double_up_to_the_cap() -> None:
    o, clock = outage(budget=1000.0)
    delays = []
    for _ in range(8):
        delays.append(o.failed("down"))
        clock.now += 0.01
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_gives_up_only_once_the_outage_outlasts_the_budget() -> None:
    o, clock = outage(budget=10.0)
    o.failed("down")
    clock.now += 10.0
    o.failed("still down")  # exactly the budget: one more try
    clock.now += 0.5
    with pytest.raises(OutageTooLong, match=r"postgresql unavailable for 10s.*still gone"):
        o.failed("still gone")


def test_a_success_resets_the_clock_and_the_back_off() -> None:
    o, clock = outage(budget=10.0)
    o.failed("down")
    clock.now += 9.0
    o.failed("down")
    o.recovered()
    assert not o.ongoing
    clock.now += 5.0
    assert o.failed("down again") == 0.1  # a new outage, from the first delay
    clock.now += 9.0
    o.failed("down again")  # 9 s into the new outage: not over budget
    assert o.total_failures == 4


def test_never_waits_past_the_end_of_the_budget() -> None:
    o, clock = outage(budget=3.0)
    o.failed("down")
    clock.now += 2.95
    for _ in range(10):
        o.failures += 1  # deep into the back-off
    assert o.failed("down") <= 0.06


def test_jitter_only_shortens_the_delay() -> None:
    delays = [Outage("kafka", 60.0).failed("down") for _ in range(50)]
    assert all(0.05 <= d <= 0.1 for d in delays)
    assert len(set(delays)) > 1


def test_exit_after_outage_exits_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.worker")
    with (
        caplog.at_level(logging.ERROR),
        pytest.raises(SystemExit) as exited,
        exit_after_outage(logger),
    ):
        raise OutageTooLong("cql unavailable for 61s")
    assert exited.value.code == EXIT_OUTAGE != 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "giving up: cql unavailable for 61s; exiting for a restart"
    ]
    assert errors[0].exc_info is None


def test_exit_after_outage_lets_other_errors_through() -> None:
    with pytest.raises(ValueError, match="a bug"), exit_after_outage(logging.getLogger("t")):
        raise ValueError("a bug")

"""How long-running workers ride out an outage of a store they need (PostgreSQL, Kafka, CQL).

A worker that loses a store retries with exponential back-off (with jitter, so workers that
lost the same server do not come back in lockstep) for at most the outage budget, counted from
the first failure of the outage; any success ends the outage and resets the clock. An outage
that outlasts the budget raises `OutageTooLong`: the process logs one line and exits non-zero
(`exit_after_outage`), so whatever supervises it (Kubernetes, `make up`) starts it again.
Exiting rather than waiting forever keeps a worker from looking alive while it does nothing.

`OUTAGE_BUDGET_S` (Settings.outage_budget_s) sets the budget; docs/reliability.md.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg

log = logging.getLogger("healthpay.outage")

# The exit status of a worker that gave up on an outage (EX_TEMPFAIL: try again later).
EXIT_OUTAGE = 75

# What a lost or restarting PostgreSQL raises: a broken or refused connection, a server
# shutting down or starting up (all OperationalError, PoolTimeout included), or a statement
# on a connection the driver already closed (InterfaceError).
POSTGRES_UNAVAILABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


class OutageTooLong(RuntimeError):
    """A store stayed unavailable for longer than the outage budget."""


@dataclass
class Outage:
    """The clock and back-off of one dependency's outage, as seen by one worker."""

    what: str  # "postgresql", "kafka", "cql": for the log lines
    budget_s: float
    first_delay_s: float = 0.1
    max_delay_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    jitter: Callable[[], float] = field(default=lambda: random.uniform(0.5, 1.0))
    since: float | None = None
    failures: int = 0
    total_failures: int = 0  # over the process's life, for tests and metrics

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException | str) -> float:
        """Records a failure; returns how long to wait before the next try. Raises
        OutageTooLong once the outage has lasted longer than the budget."""
        now = self.clock()
        if self.since is None:
            self.since = now
            log.warning(
                "%s unavailable (%s); retrying for up to %.0fs", self.what, error, self.budget_s
            )
        self.failures += 1
        self.total_failures += 1
        lasted = now - self.since
        if lasted > self.budget_s:
            raise OutageTooLong(
                f"{self.what} unavailable for {lasted:.0f}s, longer than the outage budget "
                f"({self.budget_s:.0f}s); last error: {error}"
            )
        delay: float = min(self.max_delay_s, self.first_delay_s * 2.0 ** min(self.failures - 1, 30))
        return min(delay * self.jitter(), max(0.0, self.budget_s - lasted) + 0.01)

    def recovered(self) -> None:
        """A success: the outage (if any) is over."""
        if self.since is not None:
            log.info(
                "%s back after %.1fs (%d failed tries)",
                self.what,
                self.clock() - self.since,
                self.failures,
            )
        self.since = None
        self.failures = 0


@contextmanager
def exit_after_outage(logger: logging.Logger) -> Iterator[None]:
    """Around a worker's run: an outage past its budget ends the process with EXIT_OUTAGE and
    one log line (no traceback: nothing is wrong with the worker itself)."""
    try:
        yield
    except OutageTooLong as exc:
        logger.error("giving up: %s; exiting for a restart", exc)
        raise SystemExit(EXIT_OUTAGE) from None

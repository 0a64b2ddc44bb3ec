"""Read models with one row per aggregate (medcards, wallets): a batch folds each aggregate's
events into one change, so an aggregate costs one row in one statement however many of its
events the batch holds. The change always carries the newest event's version, position and
time; what else it carries is the read model's own (a subclass of AggregateChange).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from infrastructure.eventstore.port import RecordedEvent
from projection_service.read_models.rows import Row


@dataclass(slots=True)
class AggregateChange:
    version: int
    last_position: int
    updated_at: datetime
    row: Row | None = None  # the whole row, when the aggregate was created in this batch

    def stamp(self) -> Row:
        """The columns every write of the change sets: the newest event's."""
        return {
            "version": self.version,
            "last_position": self.last_position,
            "updated_at": self.updated_at,
        }


C = TypeVar("C", bound=AggregateChange)


def change_for(changes: dict[UUID, C], recorded: RecordedEvent, new: type[C]) -> C:
    """The change of `recorded`'s aggregate, advanced to `recorded` (events come in version
    order per aggregate); a `new` one for the aggregate's first event in the batch."""
    change = changes.get(recorded.aggregate_id)
    if change is None:
        change = changes[recorded.aggregate_id] = new(
            recorded.version, recorded.position, recorded.timestamp
        )
    else:
        change.version, change.last_position = recorded.version, recorded.position
        change.updated_at = recorded.timestamp
    return change

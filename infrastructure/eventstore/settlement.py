"""Who failed, and who only might have: the pure part of PostgreSQL's batch append.

The store inserts a whole batch at once; afterwards it knows which rows went in, but a row
that stayed out may have lost its slot to another request of the same batch that fails
itself and rolls back with it. The contract is the in-memory store's: requests are settled
in batch order, each all-or-nothing, a later one seeing the earlier ones that committed.
`settle` answers exactly the requests whose answer under that contract is already certain,
and leaves the others for another attempt. No I/O here; the contract suite checks it against
the in-memory store on random batches.

Terms, for one attempt:
- a slot is (aggregate_id, version); its winner is the request whose row took it.
- a stream of request r is *chained* when an earlier request of the batch writes the
  version r expects (r builds on it), so the database is not asked whether it exists.
- a request is *solid* when it inserted everything and all it is chained on was taken by
  solid requests: it will commit in the next attempt too.
- a missing row is *certainly lost* when no request of the batch took its slot (the
  database had it, or the expected version was missing), when a later request took it
  (rows go in slot-then-request order, so ours was refused by the expected-version check),
  or when a solid request took it.
- idempotency keys and reservations are unique keys that nothing filters: in each of them
  the batch's first request that wants a key takes it, unless it was held before.
The earliest failed request always has a certain answer, so each attempt settles at least
one request and the retry loop ends.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from uuid import UUID

from infrastructure.eventstore.port import (
    AppendOutcome,
    AppendRequest,
    IdempotencyConflict,
    ReservationConflict,
    VersionConflict,
)

Slot = tuple[UUID, int]  # (aggregate_id, version)
IdemKey = tuple[str, str]  # (principal, key)
ResKey = tuple[str, str]  # (scope, key) of a reservation
Chained = set[tuple[int, UUID]]  # (request index, aggregate_id)


def chained_streams(requests: Sequence[AppendRequest], pending: Sequence[int]) -> Chained:
    written: set[Slot] = set()
    chained: Chained = set()
    for index in pending:
        streams = requests[index].streams
        for stream in streams:
            expected = stream.expected_version
            if expected and (stream.aggregate_id, expected) in written:
                chained.add((index, stream.aggregate_id))
        for stream in streams:
            version = stream.expected_version
            for _ in stream.events:
                version += 1
                written.add((stream.aggregate_id, version))
    return chained


def settle(
    requests: Sequence[AppendRequest],
    pending: Sequence[int],
    chained: Chained,
    inserted: Container[UUID],
    idem_inserted: Container[IdemKey],
    outcomes: list[AppendOutcome | None],
    reserved: Container[ResKey] = (),
) -> list[int]:
    """Fill in the certain outcomes of a failed attempt; return the requests to try again."""
    slot_winner: dict[Slot, int] = {}
    idem_winner: dict[IdemKey, int] = {}
    res_winner: dict[ResKey, int] = {}
    for index in pending:
        request = requests[index]
        for stream in request.streams:
            version = stream.expected_version
            for event in stream.events:
                version += 1
                if event.event_id in inserted:
                    slot_winner[(stream.aggregate_id, version)] = index
        record = request.idempotency
        if record is not None:
            key = (record.principal, record.key)
            # Key rows go in (key, request) order and nothing filters them: the first wins.
            if key in idem_inserted and key not in idem_winner:
                idem_winner[key] = index
        for reservation in request.reservations:
            res_key = (reservation.scope, reservation.key)
            if res_key in reserved and res_key not in res_winner:
                res_winner[res_key] = index

    solid: set[int] = set()
    failed: list[int] = []
    retry: list[int] = []
    winners = _Winners(slot_winner, idem_winner, res_winner)
    for index in pending:
        answer = _judge(requests[index], index, chained, inserted, winners, solid)
        if not isinstance(answer, _Verdict):
            outcomes[index] = answer
            continue
        retry.append(index)
        if answer is _SOLID:
            solid.add(index)
        elif answer is _DOUBTFUL:
            failed.append(index)
    if len(retry) == len(pending):
        # Unreachable by the argument above; a safe answer beats an endless loop.
        for index in failed:
            outcomes[index] = _blunt(requests[index], inserted)
        settled = set(failed)
        retry = [index for index in retry if index not in settled]
    return retry


class _Verdict:
    __slots__ = ()


class _Winners:
    """Which request of the attempt took each slot and unique key."""

    __slots__ = ("idem", "reservations", "slots")

    def __init__(
        self,
        slots: Mapping[Slot, int],
        idem: Mapping[IdemKey, int],
        reservations: Mapping[ResKey, int],
    ) -> None:
        self.slots = slots
        self.idem = idem
        self.reservations = reservations


_SOLID = _Verdict()  # inserted everything, on solid ground
_SUCCEEDED_ON_DOUBT = _Verdict()  # inserted everything, but builds on a doubtful request
_DOUBTFUL = _Verdict()  # failed, for reasons that may go away


def _judge(
    request: AppendRequest,
    index: int,
    chained: Chained,
    inserted: Container[UUID],
    winners: _Winners,
    solid: set[int],
) -> AppendOutcome | _Verdict:
    def certainly_lost(winner: int | None) -> bool:
        return winner is None or winner > index or winner in solid

    stale: list[UUID] = []
    unsure = False  # some stream or the key may yet turn out fine
    missing_any = False
    for stream in request.streams:
        aggregate_id = stream.aggregate_id
        version = stream.expected_version
        lost = False
        doubt = False
        for event in stream.events:
            version += 1
            if event.event_id in inserted:
                continue
            missing_any = True
            if certainly_lost(winners.slots.get((aggregate_id, version))):
                lost = True
                break
            doubt = True
        if lost:
            stale.append(aggregate_id)
        elif doubt:
            unsure = True
        elif (index, aggregate_id) in chained and (
            winners.slots.get((aggregate_id, stream.expected_version)) not in solid
        ):
            # Everything went in, but on top of an event a doubtful request wrote.
            unsure = True

    record = request.idempotency
    if record is not None:
        key = (record.principal, record.key)
        winner = winners.idem.get(key)
        if winner != index:
            missing_any = True
            if certainly_lost(winner):
                return IdempotencyConflict(record.principal, record.key)
            unsure = True  # its taker may step aside; only then do versions decide

    # Versions are judged before reservations (the in-memory store's order): a reservation
    # lost for certain answers only when every stream is certainly fine.
    taken: ReservationConflict | None = None
    for reservation in request.reservations:
        winner = winners.reservations.get((reservation.scope, reservation.key))
        if winner == index:
            continue
        missing_any = True
        if not certainly_lost(winner):
            unsure = True  # an earlier request holds it and may yet fail
            break
        taken = ReservationConflict(reservation.scope, reservation.key)
        break

    if not missing_any:
        return _SUCCEEDED_ON_DOUBT if unsure else _SOLID
    if unsure:
        return _DOUBTFUL
    if stale:
        return VersionConflict(tuple(stale))
    return taken if taken is not None else _DOUBTFUL


def _blunt(request: AppendRequest, inserted: Container[UUID]) -> AppendOutcome:
    record = request.idempotency
    stale = tuple(
        s.aggregate_id for s in request.streams if any(e.event_id not in inserted for e in s.events)
    )
    if record is not None and not stale:
        return IdempotencyConflict(record.principal, record.key)
    if request.reservations and not stale:
        first = request.reservations[0]
        return ReservationConflict(first.scope, first.key)
    return VersionConflict(stale)

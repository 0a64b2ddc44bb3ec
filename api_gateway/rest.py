"""REST reads under /api/v1 over the read models, with object-level authorization.

Who sees what is api_gateway/access.py's rule; here it is said in HTTP: an object the caller
may not see is 404 (as one that exists nowhere, so ids cannot be probed), a kind of object
the caller's role may not read at all is 403. Routes are plain Starlette endpoints, like the
write side's (docs/design.md §3).

A pharmacy's statement spans many cards' streams, so it has no one position: it takes no
minPosition and answers no X-Projection-Position (a claim just posted is read by id with
minPosition, GET /claims/{claim_id}).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api_gateway import read_models as q
from api_gateway.access import Kind, Refusal, refusal, statement_pharmacy, visible_to
from api_gateway.freshness import (
    Load,
    Read,
    ReadSide,
    claims_after,
    claims_cursor,
    fresh_read,
    min_position,
    page_limit,
    transactions_before,
    transactions_cursor,
)
from api_gateway.statements import statement_filter
from api_gateway.watermarks import Stream, Wanted
from infrastructure.auth.tokens import Principal
from infrastructure.http.bearer import authenticate
from infrastructure.http.problems import Problem, problem_response

log = logging.getLogger("healthpay.gateway.rest")
API = "/api/v1"
POSITION_HEADER = "X-Projection-Position"


Endpoint = Callable[[Request], Awaitable[Response]]
WHOLE_CARD = q.CardPlan(beneficiaries=True)  # GET /medcards/{id}: the card, its beneficiaries


def _endpoint(handler: Callable[[Request, ReadSide, Principal], Awaitable[Response]]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            side: ReadSide = request.app.state.read_side
            principal = authenticate(side.tokens, request.headers)
            return await handler(request, side, principal)
        except Problem as problem:
            return problem_response(problem, request.url.path)
        except TimeoutError:
            log.warning("read timed out", exc_info=True)
            return problem_response(
                Problem(503, "unavailable", "the read store is busy; retry"), request.url.path
            )
        except Exception:
            log.exception("read failed")
            return problem_response(
                Problem(500, "internal_error", "the read failed"), request.url.path
            )

    return endpoint


def _json(read: Read) -> Response:
    return Response(
        orjson.dumps(read.body),
        media_type="application/json",
        headers={POSITION_HEADER: str(read.position)},
    )


def _path_id(request: Request, name: str, code: str, what: str) -> UUID:
    try:
        return UUID(request.path_params[name])
    except ValueError as exc:
        raise Problem(404, code, f"no such {what}") from exc


def _may_read(principal: Principal, kind: Kind) -> None:
    why = refusal(principal, kind)
    if why is not None:
        raise Problem(403, "forbidden", why)


async def _answer(
    request: Request,
    side: ReadSide,
    principal: Principal,
    load: Load,
    code: str,
    what: Stream,
    key: UUID,
    *,
    one_statement: bool = False,
) -> Response:
    """`load`'s answer; with minPosition, once the stream of `what` `key` names reached it.
    `one_statement`: `load` sends one SQL statement (then it needs no transaction)."""
    position = min_position(request)
    wanted = None if position is None else Wanted(what, str(key), position)
    read = await fresh_read(side, principal, wanted, load, one_statement=one_statement)
    if read is None:
        raise Problem(404, code, f"no such {what}")
    return _json(read)


# ---------------------------------------------------------------------------------- cards


def _card_load(
    side: ReadSide, principal: Principal, card_id: UUID, more: Callable[[q.Conn], Awaitable[Any]]
) -> Load:
    async def load(conn: q.Conn) -> Read | None:
        card = visible_to(principal, await q.card(conn, card_id, side.clock()))
        if card is None:
            return None
        return Read(card.position, await more(conn))

    return load


async def get_card(request: Request, side: ReadSide, principal: Principal) -> Response:
    _may_read(principal, "card")
    card_id = _path_id(request, "card_id", "card_not_found", "card")
    now = side.clock()

    async def load(conn: q.Conn) -> Read | None:
        # one statement answers the whole body, which goes out as PostgreSQL wrote it
        card = visible_to(principal, await q.card_view(conn, card_id, now, WHOLE_CARD))
        return None if card is None else Read(card.position, orjson.Fragment(card.document))

    return await _answer(
        request, side, principal, load, "card_not_found", "card", card_id, one_statement=True
    )


async def get_beneficiaries(request: Request, side: ReadSide, principal: Principal) -> Response:
    _may_read(principal, "card")
    card_id = _path_id(request, "card_id", "card_not_found", "card")

    async def items(conn: q.Conn) -> Any:
        return {"items": await q.beneficiaries(conn, card_id)}

    load = _card_load(side, principal, card_id, items)
    return await _answer(request, side, principal, load, "card_not_found", "card", card_id)


async def get_card_claims(request: Request, side: ReadSide, principal: Principal) -> Response:
    _may_read(principal, "card")
    card_id = _path_id(request, "card_id", "card_not_found", "card")
    limit = page_limit(request)
    cursor = request.query_params.get("cursor")
    after = claims_after(cursor) if cursor else None

    async def page(conn: q.Conn) -> Any:
        items, last = await q.claims_page(conn, card_id, limit, after)
        next_cursor = claims_cursor(items[-1]["claimedAt"], items[-1]["claimId"]) if last else None
        return {"items": items, "nextCursor": next_cursor}

    load = _card_load(side, principal, card_id, page)
    return await _answer(request, side, principal, load, "card_not_found", "card", card_id)


async def get_claim(request: Request, side: ReadSide, principal: Principal) -> Response:
    claim_id = _path_id(request, "claim_id", "claim_not_found", "claim")

    async def load(conn: q.Conn) -> Read | None:
        found = visible_to(principal, await q.claim(conn, claim_id))
        return None if found is None else Read(found.position, found.body)

    return await _answer(
        request, side, principal, load, "claim_not_found", "claim", claim_id, one_statement=True
    )


# -------------------------------------------------------------------------------- wallets


async def get_wallet(request: Request, side: ReadSide, principal: Principal) -> Response:
    _may_read(principal, "wallet")
    wallet_id = _path_id(request, "wallet_id", "wallet_not_found", "wallet")

    async def load(conn: q.Conn) -> Read | None:
        found = visible_to(principal, await q.wallet(conn, wallet_id))
        return None if found is None else Read(found.position, found.body)

    return await _answer(
        request, side, principal, load, "wallet_not_found", "wallet", wallet_id, one_statement=True
    )


async def get_wallet_transactions(
    request: Request, side: ReadSide, principal: Principal
) -> Response:
    _may_read(principal, "wallet")
    wallet_id = _path_id(request, "wallet_id", "wallet_not_found", "wallet")
    limit = page_limit(request)
    cursor = request.query_params.get("cursor")
    before = transactions_before(cursor) if cursor else None

    async def load(conn: q.Conn) -> Read | None:
        found = visible_to(principal, await q.wallet(conn, wallet_id))
        if found is None:
            return None
        items, last = await q.transactions_page(conn, wallet_id, limit, before)
        next_cursor = transactions_cursor(last) if last is not None else None
        return Read(found.position, {"items": items, "nextCursor": next_cursor})

    return await _answer(request, side, principal, load, "wallet_not_found", "wallet", wallet_id)


# ----------------------------------------------------------------- pharmacy statements


async def _statement(
    request: Request, side: ReadSide, principal: Principal, asked: str | None
) -> Response:
    pharmacy = statement_pharmacy(principal, asked)
    if isinstance(pharmacy, Refusal):
        raise Problem(403, "forbidden", pharmacy.why)
    if min_position(request) is not None:
        raise Problem(
            400,
            "invalid_min_position",
            "a statement spans many cards and has no one position: it takes no minPosition"
            " (read a claim by id with minPosition to wait for it)",
        )
    params = request.query_params
    chosen = statement_filter(params.get("from"), params.get("to"), params.get("status"))
    limit = page_limit(request)
    cursor = params.get("cursor")
    key = (pharmacy, limit, claims_after(cursor) if cursor else None, chosen)

    async def load(conn: q.Conn) -> Read | None:
        # text PostgreSQL cannot hold (a NUL) names no pharmacy that posted a claim
        items, last = ([], None) if "\x00" in pharmacy else await q.statement_page(conn, key)
        next_cursor = claims_cursor(items[-1]["claimedAt"], items[-1]["claimId"]) if last else None
        return Read(0, {"items": items, "nextCursor": next_cursor})

    read = await fresh_read(side, principal, None, load, one_statement=True)
    assert read is not None  # a statement is a list: never absent
    return Response(orjson.dumps(read.body), media_type="application/json")


async def get_my_pharmacy_claims(
    request: Request, side: ReadSide, principal: Principal
) -> Response:
    return await _statement(request, side, principal, None)


async def get_pharmacy_claims(request: Request, side: ReadSide, principal: Principal) -> Response:
    return await _statement(request, side, principal, request.path_params["pharmacy_id"])


ROUTES = [
    Route(f"{API}/medcards/{{card_id}}", _endpoint(get_card), methods=["GET"]),
    Route(f"{API}/medcards/{{card_id}}/claims", _endpoint(get_card_claims), methods=["GET"]),
    Route(
        f"{API}/medcards/{{card_id}}/beneficiaries",
        _endpoint(get_beneficiaries),
        methods=["GET"],
    ),
    Route(f"{API}/claims/{{claim_id}}", _endpoint(get_claim), methods=["GET"]),
    Route(f"{API}/wallets/{{wallet_id}}", _endpoint(get_wallet), methods=["GET"]),
    Route(
        f"{API}/wallets/{{wallet_id}}/transactions",
        _endpoint(get_wallet_transactions),
        methods=["GET"],
    ),
    # before the next route: "me" is the caller, not a pharmacy's id
    Route(f"{API}/pharmacies/me/claims", _endpoint(get_my_pharmacy_claims), methods=["GET"]),
    Route(
        f"{API}/pharmacies/{{pharmacy_id}}/claims",
        _endpoint(get_pharmacy_claims),
        methods=["GET"],
    ),
]

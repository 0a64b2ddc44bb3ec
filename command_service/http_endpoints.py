"""The plumbing every write endpoint shares: token, path ids, body, Idempotency-Key, errors.

Routes are plain Starlette endpoints mounted in the FastAPI app (docs/design.md §3: FastAPI's
per-request layers cost ~2.5x Starlette's on the claim path); pydantic only validates bodies.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import orjson
from pydantic import BaseModel, SecretStr
from starlette.requests import Request
from starlette.responses import Response

from command_service.bodies import decode
from command_service.execution import (
    REPLAY_STATUS,
    CommandContext,
    Executor,
    IdempotencyClaim,
    IdempotentReplay,
    Outcome,
)
from command_service.ids import new_id
from command_service.responses import render
from domain.errors import CommandRejected
from domain.events import ClaimAdjudicated, ClaimReversed
from infrastructure.auth.tokens import Principal, TokenVerifier
from infrastructure.eventstore.port import EventStore, IdempotencyRecord
from infrastructure.http.bearer import authenticate as bearer_principal
from infrastructure.http.bodies import read_body
from infrastructure.http.problems import Problem, problem_response
from infrastructure.logs import CURRENT_CORRELATION_ID
from schemas.api.commands import CORRELATION_ID, IDEMPOTENCY_KEY, uuid_from_text

log = logging.getLogger("healthpay.command_service")
B = TypeVar("B", bound=BaseModel)


@dataclass(slots=True)
class WriteSide:
    """Everything an endpoint needs, built once by the composition root."""

    executor: Executor
    store: EventStore
    tokens: TokenVerifier
    in_flight: set[tuple[str, str]] = field(default_factory=set)
    # The gateways' callback keys (infrastructure/settings.py); None: not configured.
    fawry_security_key: SecretStr | None = None
    paymob_hmac_secret: SecretStr | None = None


def authenticate(side: WriteSide, request: Request) -> Principal:
    return bearer_principal(side.tokens, request.headers)


def path_id(request: Request, name: str, missing_code: str) -> UUID:
    found = uuid_from_text(request.path_params[name])
    if found is None:
        raise Problem(404, missing_code, f"no such {name.removesuffix('_id')}")
    return found


async def parse_body(
    request: Request, model: type[B], *, optional: bool = False
) -> tuple[B, bytes]:
    raw = await read_body(request)
    if not raw.strip() and optional:
        return model.model_validate({}), raw
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise Problem(415, "unsupported_media_type", "send the body as application/json")
    return decode(model, raw), raw


Run = Callable[[CommandContext], Awaitable[Outcome]]


async def execute(
    side: WriteSide, request: Request, principal: Principal, raw_body: bytes, run: Run
) -> Response:
    """Runs a command with its Idempotency-Key semantics and answers with JSON; every line
    logged meanwhile carries the request's correlation id."""
    key = request.headers.get("idempotency-key")
    ctx = CommandContext(at=datetime.now(UTC), metadata=_metadata(request, principal, key))
    token = CURRENT_CORRELATION_ID.set(ctx.metadata["correlation_id"])
    try:
        return await _idempotent(side, request, principal, raw_body, run, ctx, key)
    finally:
        CURRENT_CORRELATION_ID.reset(token)


async def _idempotent(
    side: WriteSide,
    request: Request,
    principal: Principal,
    raw_body: bytes,
    run: Run,
    ctx: CommandContext,
    key: str | None,
) -> Response:
    if key is None:
        return _answer(await _domain(run, ctx), ctx)
    if not IDEMPOTENCY_KEY.accepts(key):
        raise Problem(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY.max_length} characters of"
            " visible ASCII or spaces",
        )
    request_hash = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + raw_body
    ).hexdigest()
    # Keys are the caller's own: one role, subject and pharmacy (Principal.idempotency_scope).
    scope = principal.idempotency_scope
    if (scope, key) in side.in_flight:
        raise Problem(
            409, "idempotency_key_in_use", "a request with this Idempotency-Key is still running"
        )
    # Claimed before the first await, so a concurrent duplicate in this process sees it.
    side.in_flight.add((scope, key))
    try:
        stored = await side.store.get_idempotency(scope, key)
        if stored is None:
            ctx.idempotency = IdempotencyClaim(scope, key, request_hash)
            try:
                return _answer(await _domain(run, ctx), ctx)
            except IdempotentReplay:
                stored = await side.store.get_idempotency(scope, key)
                if stored is None:
                    raise
        return await _replay_stored(side, stored, request_hash)
    finally:
        side.in_flight.discard((scope, key))


async def _replay_stored(side: WriteSide, stored: IdempotencyRecord, request_hash: str) -> Response:
    if stored.request_hash != request_hash:
        raise Problem(
            422, "idempotency_key_reused", "this Idempotency-Key was used with a different request"
        )
    outcome = await side.executor.recall(stored)
    return Response(
        orjson.dumps(render(outcome)),
        status_code=stored.status_code,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )


async def _domain(run: Run, ctx: CommandContext) -> Outcome:
    try:
        outcome = await run(ctx)
    except CommandRejected as exc:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("command refused: %s", exc.code, extra={"status": int(exc.kind)})
        raise Problem(int(exc.kind), exc.code, exc.detail) from exc
    if log.isEnabledFor(logging.DEBUG):  # the hot path: one level check when not wanted
        log.debug("command done: %s", outcome.result.event_type, extra=_described(outcome))
    return outcome


def _described(outcome: Outcome) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "aggregate_id": str(outcome.aggregate_id),
        "version": outcome.version,
        "position": outcome.position,
        "replayed": not outcome.created,  # ("created" is a LogRecord attribute)
        "quote": outcome.quote,
    }
    result = outcome.result
    if isinstance(result, ClaimAdjudicated | ClaimReversed):
        fields["claim_id"] = str(result.claim_id)
        fields["pharmacy_id"] = result.pharmacy_id
    if isinstance(result, ClaimAdjudicated):
        fields["decision"] = str(result.decision)
    return fields


def _answer(outcome: Outcome, ctx: CommandContext) -> Response:
    status = ctx.status_code if outcome.created else REPLAY_STATUS
    headers = None if outcome.created else {"Idempotent-Replayed": "true"}
    return Response(
        orjson.dumps(render(outcome)),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def correlation_id(request: Request) -> str:
    """The client's X-Correlation-Id for this request, or a new one when it sent none."""
    correlation = request.headers.get("x-correlation-id")
    if not correlation:
        return str(new_id())
    if not CORRELATION_ID.accepts(correlation):
        raise Problem(
            400,
            "invalid_correlation_id",
            f"X-Correlation-Id must be 1 to {CORRELATION_ID.max_length} characters of"
            " visible ASCII or spaces",
        )
    return correlation


def _metadata(request: Request, principal: Principal, key: str | None) -> dict[str, Any]:
    correlation = correlation_id(request)
    actor: dict[str, Any] = {"role": principal.role.value, "sub": principal.subject}
    if principal.pharmacy_id:
        actor["pharmacy_id"] = principal.pharmacy_id
    metadata: dict[str, Any] = {"correlation_id": correlation, "actor": actor}
    if key is not None:
        metadata["idempotency_key"] = key
        metadata["causation_id"] = key
    return metadata


Endpoint = Callable[[Request], Awaitable[Response]]


def guarded(handler: Endpoint) -> Endpoint:
    """Every error leaves as problem+json; unexpected ones are logged without request data."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except Problem as problem:
            return problem_response(problem, request.url.path)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, handler.__name__)
            return problem_response(
                Problem(500, "internal_error", "the server failed; the request may be retried"),
                request.url.path,
            )

    endpoint.__name__ = handler.__name__
    return endpoint

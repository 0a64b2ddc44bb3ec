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
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

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
from infrastructure.auth.tokens import Principal, TokenVerifier
from infrastructure.eventstore.port import EventStore, IdempotencyRecord
from infrastructure.http.bearer import authenticate as bearer_principal
from infrastructure.http.problems import Problem, problem_response, validation_errors

log = logging.getLogger("healthpay.command_service")
B = TypeVar("B", bound=BaseModel)
MAX_KEY_LENGTH = 255
MAX_BODY_BYTES = 256 * 1024


@dataclass(slots=True)
class WriteSide:
    """Everything an endpoint needs, built once by the composition root."""

    executor: Executor
    store: EventStore
    tokens: TokenVerifier
    in_flight: set[tuple[str, str]] = field(default_factory=set)


def authenticate(side: WriteSide, request: Request) -> Principal:
    return bearer_principal(side.tokens, request.headers)


def path_id(request: Request, name: str, missing_code: str) -> UUID:
    try:
        return UUID(request.path_params[name])
    except ValueError as exc:
        raise Problem(404, missing_code, f"no such {name.removesuffix('_id')}") from exc


async def parse_body(
    request: Request, model: type[B], *, optional: bool = False
) -> tuple[B, bytes]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise Problem(
            413, "body_too_large", f"request bodies are limited to {MAX_BODY_BYTES} bytes"
        )
    if not raw.strip() and optional:
        return model.model_validate({}), raw
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise Problem(415, "unsupported_media_type", "send the body as application/json")
    try:
        return model.model_validate_json(raw), raw
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        if any(err["type"] == "json_invalid" for err in errors):
            raise Problem(400, "malformed_json", "the body is not valid JSON") from exc
        if any(err["type"] == "model_type" and not err["loc"] for err in errors):
            raise Problem(422, "invalid_body", "the body must be a JSON object") from exc
        raise Problem(
            422,
            "validation_failed",
            "the body has invalid fields",
            errors=validation_errors(errors),
        ) from exc


Run = Callable[[CommandContext], Awaitable[Outcome]]


async def execute(
    side: WriteSide, request: Request, principal: Principal, raw_body: bytes, run: Run
) -> Response:
    """Runs a command with its Idempotency-Key semantics and answers with JSON."""
    key = request.headers.get("idempotency-key")
    ctx = CommandContext(at=datetime.now(UTC), metadata=_metadata(request, principal, key))
    if key is None:
        return _answer(await _domain(run, ctx), ctx)
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise Problem(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
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
        return await run(ctx)
    except CommandRejected as exc:
        raise Problem(int(exc.kind), exc.code, exc.detail) from exc


def _answer(outcome: Outcome, ctx: CommandContext) -> Response:
    status = ctx.status_code if outcome.created else REPLAY_STATUS
    headers = None if outcome.created else {"Idempotent-Replayed": "true"}
    return Response(
        orjson.dumps(render(outcome)),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _metadata(request: Request, principal: Principal, key: str | None) -> dict[str, Any]:
    correlation = request.headers.get("x-correlation-id") or str(new_id())
    actor: dict[str, Any] = {"role": principal.role.value, "sub": principal.subject}
    if principal.pharmacy_id:
        actor["pharmacy_id"] = principal.pharmacy_id
    metadata: dict[str, Any] = {"correlation_id": correlation[:100], "actor": actor}
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

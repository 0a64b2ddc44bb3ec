"""Forwards the gateway's GraphQL mutations to the command service's write API over HTTP.

The gateway holds no write rules of its own: the command service authenticates and authorizes
every command, so the caller's `Authorization` header goes through unchanged and the gateway
can never act with more rights than the caller has. Talking HTTP (not importing
command_service) keeps the services independent and lets the public edge send each write to
the process that owns the card.

Every call is bounded in time: a command service that is down or slow becomes
`CommandUnavailable`, never a hung request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from infrastructure.http.problems import Problem

DEFAULT_TIMEOUT_SECONDS = 5.0
PROBLEM_JSON = "application/problem+json"
# Request headers a write may carry on for tracing; the command service reads the first.
_TRACING = ("x-correlation-id", "x-request-id")


@dataclass(frozen=True, slots=True)
class Answer:
    """A command the service carried out (or an identical earlier one it replayed)."""

    status: int
    body: dict[str, Any]
    replayed: bool


class CommandUnavailable(Exception):
    """No usable answer: the service could not be reached, timed out, or answered with
    something that is not the write API's (an edge's 502 page, say). The command may or may
    not have been carried out, so the caller should retry with the same Idempotency-Key."""


class CommandService:
    """One pooled HTTP client for the gateway's lifetime; `transport` lets tests run the
    command service in-process (httpx.ASGITransport) or point at a closed port."""

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._deadline = timeout_seconds
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=httpx.Timeout(timeout_seconds),
            # Redirects would re-send a write somewhere the caller did not choose.
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(
        self,
        method: str,
        path: str,
        *,
        authorization: str,
        body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        tracing: dict[str, str] | None = None,
    ) -> Answer:
        """`path` is under the write API (e.g. "/api/v1/wallets"); raises the refusal as the
        `Problem` the command service answered, or CommandUnavailable."""
        headers = {"authorization": authorization, "accept": "application/json"}
        content: bytes | None = None
        if body is not None:
            # orjson keeps the bytes stable for equal inputs, which the command service's
            # Idempotency-Key check hashes: a retried mutation must send the same body.
            content = orjson.dumps(body)
            headers["content-type"] = "application/json"
        if idempotency_key is not None:
            headers["idempotency-key"] = idempotency_key
        for name in _TRACING:
            if tracing and name in tracing:
                headers[name] = tracing[name]
        response = await self._request(method, path, headers, content)
        return _answer(response)

    async def forward(
        self, method: str, path: str, headers: dict[str, str], content: bytes
    ) -> httpx.Response:
        """A write passed through as it came (headers already chosen by the caller) and its
        answer as it went; raises CommandUnavailable."""
        return await self._request(method, path, headers, content)

    async def _request(
        self, method: str, path: str, headers: dict[str, str], content: bytes | None
    ) -> httpx.Response:
        try:
            # httpx's timeouts bound each network step; this bounds the whole call (a service
            # that trickles its answer, or a transport without timeouts of its own).
            async with asyncio.timeout(self._deadline):
                return await self._client.request(method, path, content=content, headers=headers)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise CommandUnavailable("the command service did not answer in time") from exc
        except httpx.TransportError as exc:
            raise CommandUnavailable("the command service could not be reached") from exc


def _answer(response: httpx.Response) -> Answer:
    media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    try:
        parsed: Any = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise CommandUnavailable(f"the command service answered {response.status_code}")
    if response.is_success and media == "application/json":
        replayed = response.headers.get("idempotent-replayed", "").lower() == "true"
        return Answer(response.status_code, parsed, replayed)
    if not response.is_success and media == PROBLEM_JSON and isinstance(parsed.get("code"), str):
        errors = parsed.get("errors")
        raise Problem(
            response.status_code,
            parsed["code"],
            str(parsed.get("detail") or parsed["code"]),
            errors=errors if isinstance(errors, list) else None,
        )
    raise CommandUnavailable(f"the command service answered {response.status_code}")

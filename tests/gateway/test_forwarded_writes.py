"""POST /api/v1/medcards/{id}/beneficiaries at the gateway (where a Kubernetes Ingress, which
cannot route by method, sends it): passed to the command service and answered as it answered."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from api_gateway.app import create_app
from schemas.api.commands import MAX_BODY_BYTES
from tests.api.support import API, Tokens, api_settings, assert_problem, beneficiary_body
from tests.gateway.conftest import Gateway
from tests.gateway.test_authorization import BAD_TOKENS

pytestmark = pytest.mark.integration


async def test_a_member_adds_a_beneficiary_through_the_gateway(
    gateway: Gateway, writer: httpx.AsyncClient, tokens: Tokens
) -> None:
    url = f"{API}/medcards/{gateway.world.family_card}/beneficiaries"
    body = beneficiary_body(serial="0771", relationship="parent")
    key = {"Idempotency-Key": "fw-1"}
    before = await gateway.api.event_count()

    first = await writer.post(url, json=body, headers=tokens.member("member-a") | key)
    assert first.status_code == 201, first.text
    added = first.json()
    assert added["nationalId"] == body["nationalId"]
    again = await writer.post(url, json=body, headers=tokens.member("member-a") | key)
    assert again.status_code == 201  # the first answer again, status included
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == added
    assert await gateway.api.event_count() == before + 1

    await gateway.project_new()
    listed = await gateway.client.get(
        f"{url}?minPosition={added['position']}", headers=tokens.member("member-a")
    )
    assert body["nationalId"] in {b["nationalId"] for b in listed.json()["items"]}


async def test_refusals_come_back_unchanged_and_write_nothing(
    gateway: Gateway, writer: httpx.AsyncClient, tokens: Tokens
) -> None:
    url = f"{API}/medcards/{gateway.world.family_card}/beneficiaries"
    before = await gateway.api.event_count()
    body = beneficiary_body(serial="0772")
    for token, headers in BAD_TOKENS.items():
        expected = "unauthorized" if token in ("none", "not_bearer") else "invalid_token"
        assert_problem(await writer.post(url, json=body, headers=headers(tokens)), 401, expected)
    pharmacy = await writer.post(url, json=body, headers=tokens.pharmacy())
    assert_problem(pharmacy, 403, "forbidden")
    theirs = await writer.post(url, json=body, headers=tokens.member("member-b"))
    assert_problem(theirs, 404, "card_not_found")
    bad = await writer.post(url, json=body | {"nationalId": "123"}, headers=tokens.admin())
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    not_an_id = await writer.post(
        f"{API}/medcards/not-a-card/beneficiaries", json=body, headers=tokens.admin()
    )
    assert_problem(not_an_id, 404, "card_not_found")
    assert await gateway.api.event_count() == before


async def test_an_unreachable_command_service_is_a_502_problem(
    gateway: Gateway, tokens: Tokens
) -> None:
    app = create_app(
        api_settings(gateway.api.postgres_url), command_transport=httpx.MockTransport(_refuse)
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw.test"
        ) as client,
    ):
        answer = await client.post(
            f"{API}/medcards/{gateway.world.family_card}/beneficiaries",
            json=beneficiary_body(serial="0773"),
            headers=tokens.admin(),
        )
    assert_problem(answer, 502, "command_service_unavailable")
    assert answer.headers["retry-after"] == "1"


async def test_a_body_over_the_command_services_limit_stops_at_the_gateway(
    gateway: Gateway, tokens: Tokens
) -> None:
    """The same limit as the command service's, whether the body says its length or not."""
    forwarded: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        forwarded.append(request)
        return httpx.Response(500)

    app = create_app(
        api_settings(gateway.api.postgres_url), command_transport=httpx.MockTransport(record)
    )
    body = b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}'

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 16384):
            yield body[start : start + 16384]

    url = f"{API}/medcards/{gateway.world.family_card}/beneficiaries"
    headers = tokens.admin() | {"Content-Type": "application/json"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw.test"
        ) as client,
    ):
        for content in (body, chunked()):
            answer = await client.post(url, content=content, headers=headers)
            problem = assert_problem(answer, 413, "body_too_large")
            assert str(MAX_BODY_BYTES) in problem["detail"]
    assert forwarded == []


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)

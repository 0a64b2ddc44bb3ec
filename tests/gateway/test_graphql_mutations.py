"""GraphQL mutations at /graphql, forwarded to the command service (real PostgreSQL).

The gateway under test forwards over httpx to the command service running in-process on the
same database, so every refusal, idempotent replay and authorization decision is the command
service's own; these tests check that the gateway passes them through faithfully and never
widens a caller's rights.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
import pytest

from api_gateway.app import create_app
from api_gateway.commands_client import CommandService, CommandUnavailable
from api_gateway.graphql.schema import schema
from tests.api.support import (
    API,
    Headers,
    Tokens,
    api_settings,
    assert_problem,
    beneficiary_body,
    claim,
    issue_card,
    open_wallet,
    top_up,
)
from tests.gateway.conftest import Gateway
from tests.gateway.test_authorization import BAD_TOKENS
from tests.gateway.test_graphql import graphql_body
from tests.projections.support import World

pytestmark = pytest.mark.integration

ADD = """
mutation($card: ID!, $input: BeneficiaryInput!, $key: String) {
  addBeneficiary(medcardId: $card, input: $input, idempotencyKey: $key) {
    position version eventType replayed medcardId
    beneficiary { id relationship nationalId name dateOfBirth phoneNumber }
  }
}"""
REMOVE = """
mutation($card: ID!, $beneficiary: ID!, $key: String) {
  removeBeneficiary(medcardId: $card, beneficiaryId: $beneficiary, idempotencyKey: $key) {
    position eventType replayed medcardId beneficiaryId removed
  }
}"""
OPEN = """
mutation($user: String!, $key: String) {
  openWallet(userId: $user, idempotencyKey: $key) {
    position eventType walletId ownerUserId currency balance openedAt
  }
}"""
TOP_UP = """
mutation($wallet: ID!, $input: TopUpInput!, $key: String) {
  topUpWallet(walletId: $wallet, input: $input, idempotencyKey: $key) {
    position eventType replayed walletId transactionId type amount balance at
    gateway gatewayReference
  }
}"""


PAY = """
mutation($wallet: ID!, $input: PaymentInput!, $key: String) {
  payFromWallet(walletId: $wallet, input: $input, idempotencyKey: $key) {
    position eventType replayed walletId transactionId type amount balance at purpose reference
  }
}"""
CONSENT = """
mutation($wallet: ID!, $input: CopayConsentInput!, $key: String) {
  setCopayConsent(walletId: $wallet, input: $input, idempotencyKey: $key) {
    position eventType replayed walletId copayConsent { perClaimLimit monthlyLimit setAt }
  }
}"""
SUSPEND = """
mutation($card: ID!, $reason: String, $key: String) {
  suspendMedcard(medcardId: $card, reason: $reason, idempotencyKey: $key) {
    position eventType replayed medcardId status
  }
}"""


async def gql(
    client: httpx.AsyncClient, headers: Headers, query: str, **variables: Any
) -> dict[str, Any]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    return graphql_body(response)


def only_error(body: dict[str, Any], field: str) -> dict[str, Any]:
    """The single error of a refused mutation, whose field must be null."""
    assert body["data"] == {field: None}, body
    [error] = body["errors"]
    assert error["path"] == [field]
    extensions: dict[str, Any] = error["extensions"]
    return {"message": error["message"], **extensions}


# Every mutation, asked about member-a's card or wallet of the shared world: what a member
# of another card, a pharmacy and a bad token get. The command service decides; the gateway
# must pass its decision on unchanged.
MUTATIONS: dict[str, tuple[str, Callable[[World], dict[str, Any]], str]] = {
    "addBeneficiary": (
        ADD,
        lambda w: {"card": w.family_card, "input": beneficiary_body(serial="0901")},
        "card_not_found",
    ),
    "removeBeneficiary": (
        REMOVE,
        lambda w: {"card": w.family_card, "beneficiary": w.removed_beneficiary},
        "card_not_found",
    ),
    "openWallet": (OPEN, lambda w: {"user": "member-a"}, "forbidden"),
    "topUpWallet": (
        TOP_UP,
        lambda w: {
            "wallet": w.wallet_a,
            "input": {"gateway": "fawry", "gatewayReference": "matrix", "amount": "1.00"},
        },
        "forbidden",
    ),
    "payFromWallet": (
        PAY,
        lambda w: {
            "wallet": w.wallet_a,
            "input": {"amount": "1.00", "reference": "matrix-pay"},
        },
        "wallet_not_found",
    ),
    "setCopayConsent": (
        CONSENT,
        lambda w: {
            "wallet": w.wallet_a,
            "input": {"perClaimLimit": "10.00", "monthlyLimit": "20.00"},
        },
        "wallet_not_found",
    ),
    "suspendMedcard": (
        SUSPEND,
        lambda w: {"card": w.family_card, "reason": "matrix"},
        "card_not_found",
    ),
}


def person(serial: str, born: date = date(1991, 2, 3), **extra: Any) -> dict[str, Any]:
    return beneficiary_body(born, serial=serial, **extra)


async def member_card(gw: Gateway, tokens: Tokens, member: str) -> str:
    card = await issue_card(gw.api, tokens.admin(), member, "gold")
    return str(card["id"])


def test_every_mutation_is_in_the_matrix() -> None:
    # a new mutation must say here what each kind of caller gets
    mutation = schema._schema.mutation_type
    assert mutation is not None
    assert set(mutation.fields) == set(MUTATIONS)


@pytest.mark.parametrize("name", MUTATIONS)
async def test_no_caller_writes_through_another_members_object(
    gateway: Gateway, writer: httpx.AsyncClient, tokens: Tokens, name: str
) -> None:
    query, variables, intruder_code = MUTATIONS[name]
    before = await gateway.api.events()
    for token in BAD_TOKENS:
        response = await writer.post(
            "/graphql",
            json={"query": query, "variables": variables(gateway.world)},
            headers=BAD_TOKENS[token](tokens),
        )
        assert_problem(
            response, 401, "unauthorized" if token in ("none", "not_bearer") else "invalid_token"
        )
    intruder = await gql(writer, tokens.member("member-b"), query, **variables(gateway.world))
    assert only_error(intruder, name)["problem"] == intruder_code
    assert only_error(intruder, name)["code"] == (
        "NOT_FOUND" if intruder_code.endswith("not_found") else "FORBIDDEN"
    )
    pharmacy = await gql(writer, tokens.pharmacy(), query, **variables(gateway.world))
    assert (only_error(pharmacy, name)["problem"], only_error(pharmacy, name)["status"]) == (
        "forbidden",
        403,
    )
    assert await gateway.api.events() == before


async def test_a_member_adds_a_beneficiary_to_their_own_card_and_reads_it_back(
    gateway: Gateway, writer: httpx.AsyncClient, tokens: Tokens
) -> None:
    card = await member_card(gateway, tokens, "mut-a")
    member = tokens.member("mut-a")
    body = await gql(writer, member, ADD, card=card, input=person("0101", name="Laila"))
    assert "errors" not in body, body
    added = body["data"]["addBeneficiary"]
    assert (added["eventType"], added["replayed"], added["medcardId"]) == (
        "medcard.beneficiary_added",
        False,
        card,
    )
    assert isinstance(added["position"], int)
    assert added["position"] > gateway.projected
    b = added["beneficiary"]
    assert (b["relationship"], b["name"], b["dateOfBirth"]) == ("spouse", "Laila", "1991-02-03")
    [event] = [e for e in await gateway.api.stream(card) if e.position == added["position"]]
    assert event.metadata["actor"] == {"role": "member", "sub": "mut-a"}

    await gateway.project_new()
    # the write's position is what a later read waits for
    rest = await gateway.client.get(
        f"{API}/medcards/{card}/beneficiaries",
        params={"minPosition": added["position"]},
        headers=member,
    )
    assert rest.status_code == 200, rest.text
    assert b["id"] in {item["id"] for item in rest.json()["items"]}
    read = await gql(
        writer,
        member,
        "query($id: ID!) { medcard(id: $id) { beneficiaries { id name } } }",
        id=card,
    )
    assert {"id": b["id"], "name": "Laila"} in read["data"]["medcard"]["beneficiaries"]

    removed = await gql(writer, member, REMOVE, card=card, beneficiary=b["id"])
    assert "errors" not in removed, removed
    gone = removed["data"]["removeBeneficiary"]
    assert (gone["removed"], gone["beneficiaryId"], gone["medcardId"]) == (True, b["id"], card)
    assert gone["eventType"] == "medcard.beneficiary_removed"
    assert gone["position"] > added["position"]
    await gateway.project_new()
    after = await gateway.client.get(f"{API}/medcards/{card}/beneficiaries", headers=member)
    assert b["id"] not in {item["id"] for item in after.json()["items"]}


async def test_wallets_open_for_the_member_and_top_up_by_staff_only(
    gateway: Gateway, writer: httpx.AsyncClient, tokens: Tokens
) -> None:
    member = tokens.member("mut-w")
    opened = await gql(writer, member, OPEN, user="mut-w")
    assert "errors" not in opened, opened
    wallet = opened["data"]["openWallet"]
    assert (wallet["ownerUserId"], wallet["balance"], wallet["currency"]) == (
        "mut-w",
        "0.00",
        "EGP",
    )
    top_up = {"gateway": "Fawry", "gatewayReference": "mut-w-1", "amount": "120.50"}

    # Top-ups are booked by staff from the payment gateway's notice: the command service
    # refuses a member's, and the gateway passes the refusal on instead of acting for them.
    before = await gateway.api.events()
    refused = only_error(
        await gql(writer, member, TOP_UP, wallet=wallet["walletId"], input=top_up),
        "topUpWallet",
    )
    assert (refused["problem"], refused["status"]) == ("forbidden", 403)
    assert await gateway.api.events() == before

    body = await gql(writer, tokens.ops(), TOP_UP, wallet=wallet["walletId"], input=top_up)
    assert "errors" not in body, body
    topped = body["data"]["topUpWallet"]
    assert (topped["type"], topped["amount"], topped["balance"]) == ("topup", "120.50", "120.50")
    assert (topped["gateway"], topped["gatewayReference"]) == ("fawry", "mut-w-1")
    assert topped["position"] > wallet["position"]

    await gateway.project_new()
    read = await gql(
        writer, member, "query($id: ID!) { wallet(id: $id) { balance } }", id=wallet["walletId"]
    )
    assert read["data"]["wallet"] == {"balance": "120.50"}

    # a member may open only their own wallet
    other = only_error(await gql(writer, member, OPEN, user="someone-else"), "openWallet")
    assert (other["problem"], other["status"]) == ("forbidden", 403)


async def test_another_members_card_is_not_found_and_nothing_is_written(
    gateway: Gateway, writer: httpx.AsyncClient, tokens: Tokens
) -> None:
    card = await member_card(gateway, tokens, "mut-owner")
    await gateway.project_new()
    before = await gateway.api.events()
    body = await gql(writer, tokens.member("mut-intruder"), ADD, card=card, input=person("0201"))
    refused = only_error(body, "addBeneficiary")
    assert refused == {
        "message": "no such card",
        "code": "NOT_FOUND",
        "problem": "card_not_found",
        "status": 404,
    }
    # an id that is no UUID is refused as the command service refuses it, before any request
    absent = only_error(
        await gql(writer, tokens.member("mut-owner"), ADD, card="../wallets", input=person("0202")),
        "addBeneficiary",
    )
    assert (absent["problem"], absent["status"]) == ("card_not_found", 404)
    assert await gateway.api.events() == before
    assert await gateway.project_new() == before[-1].position
    rest = await gateway.client.get(
        f"{API}/medcards/{card}/beneficiaries", headers=tokens.member("mut-owner")
    )
    assert person("0201")["nationalId"] not in {b["nationalId"] for b in rest.json()["items"]}


async def test_a_pharmacy_may_not_change_beneficiaries(
    gateway: Gateway, writer: httpx.AsyncClient, tokens: Tokens
) -> None:
    card = await member_card(gateway, tokens, "mut-ph")
    before = await gateway.api.event_count()
    body = await gql(writer, tokens.pharmacy(), ADD, card=card, input=person("0301"))
    refused = only_error(body, "addBeneficiary")
    assert (refused["problem"], refused["status"]) == ("forbidden", 403)
    assert "pharmacy" in refused["message"]
    assert await gateway.api.event_count() == before


async def test_bad_input_gets_the_command_services_problem_code(
    gateway: Gateway, writer: httpx.AsyncClient, tokens: Tokens
) -> None:
    card = await member_card(gateway, tokens, "mut-bad")
    wallet = await open_wallet(gateway.api, tokens.ops(), "mut-bad")
    before = await gateway.api.event_count()

    bad_id = person("0401") | {"nationalId": "29902301234567"}  # 30 February
    refused = only_error(
        await gql(writer, tokens.member("mut-bad"), ADD, card=card, input=bad_id), "addBeneficiary"
    )
    assert (refused["code"], refused["problem"], refused["status"]) == (
        "BAD_USER_INPUT",
        "invalid_national_id",
        422,
    )
    assert "errors" not in refused  # a domain refusal names no body field

    for amount, kind in (("0", "greater_than"), ("10.001", "decimal_max_places")):
        top_up = {"gateway": "fawry", "gatewayReference": f"bad-{amount}", "amount": amount}
        body = await gql(writer, tokens.ops(), TOP_UP, wallet=wallet["id"], input=top_up)
        refused = only_error(body, "topUpWallet")
        assert (refused["problem"], refused["status"]) == ("validation_failed", 422)
        # the field errors stay with the error, as in the REST answer
        [field] = refused["errors"]
        assert (field["field"], field["type"]) == ("amount", kind)

    # GraphQL's own checks still come first: a missing input field never reaches the service
    missing = await gql(
        writer,
        tokens.member("mut-bad"),
        ADD,
        card=card,
        input={k: v for k, v in person("0402").items() if k != "name"},
    )
    assert missing.get("data") is None
    assert await gateway.api.event_count() == before


async def test_the_same_idempotency_key_writes_once_and_answers_the_same(
    gateway: Gateway, writer: httpx.AsyncClient, tokens: Tokens
) -> None:
    card = await member_card(gateway, tokens, "mut-idem")
    member = tokens.member("mut-idem")
    first = await gql(writer, member, ADD, card=card, input=person("0501"), key="app-req-1")
    count = await gateway.api.event_count()
    again = await gql(writer, member, ADD, card=card, input=person("0501"), key="app-req-1")
    assert await gateway.api.event_count() == count
    one, two = first["data"]["addBeneficiary"], again["data"]["addBeneficiary"]
    assert (one["replayed"], two["replayed"]) == (False, True)
    assert {**one, "replayed": True} == two
    [event] = [e for e in await gateway.api.stream(card) if e.position == one["position"]]
    assert event.metadata["idempotency_key"] == "app-req-1"

    # the same key for another write is refused, not silently replayed
    other = await gql(writer, member, ADD, card=card, input=person("0502"), key="app-req-1")
    refused = only_error(other, "addBeneficiary")
    assert (refused["problem"], refused["status"]) == ("idempotency_key_reused", 422)
    bad_key = await gql(writer, member, ADD, card=card, input=person("0503"), key="a\nb")
    assert only_error(bad_key, "addBeneficiary")["problem"] == "invalid_idempotency_key"
    assert await gateway.api.event_count() == count


async def test_no_token_is_a_401_problem_and_get_cannot_mutate(
    gateway: Gateway, writer: httpx.AsyncClient, tokens: Tokens
) -> None:
    card = await member_card(gateway, tokens, "mut-http")
    before = await gateway.api.event_count()
    variables = {"card": card, "input": person("0601")}
    for headers in ({}, tokens.expired()):
        response = await writer.post(
            "/graphql", json={"query": ADD, "variables": variables}, headers=headers
        )
        assert_problem(response, 401, "invalid_token" if headers else "unauthorized")

    mutation = 'mutation { openWallet(userId: "mut-http") { walletId } }'
    over_get = await writer.get(
        "/graphql", params={"query": mutation}, headers=tokens.member("mut-http")
    )
    # Strawberry's own refusal, before anything runs (a GraphQL error, as JSON)
    assert over_get.status_code == 400, over_get.text
    assert over_get.json()["errors"][0]["message"] == "mutations are not allowed when using GET"
    assert await gateway.api.event_count() == before


async def test_the_alias_limit_applies_to_mutations(
    gateway: Gateway, writer: httpx.AsyncClient, tokens: Tokens
) -> None:
    card = await member_card(gateway, tokens, "mut-alias")
    before = await gateway.api.event_count()
    fields = " ".join(
        f'a{n}: removeBeneficiary(medcardId: "{card}", beneficiaryId: "{card}") {{ position }}'
        for n in range(20)
    )
    body = await gql(writer, tokens.member("mut-alias"), f"mutation {{ {fields} }}")
    assert body.get("data") is None
    assert any("alias" in e["message"].lower() for e in body["errors"])
    assert await gateway.api.event_count() == before


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: a connection is refused


async def test_an_unreachable_command_service_is_unavailable(
    gateway: Gateway, tokens: Tokens
) -> None:
    assert gateway.api.postgres_url is not None
    settings = api_settings(
        gateway.api.postgres_url, command_service_url=f"http://127.0.0.1:{closed_port()}"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            started = time.monotonic()
            body = await gql(client, tokens.member("mut-x"), OPEN, user="mut-x")
    assert time.monotonic() - started < 5
    refused = only_error(body, "openWallet")
    assert refused["code"] == "UNAVAILABLE"
    assert "idempotencyKey" in refused["message"]


async def test_a_slow_command_service_times_out_as_unavailable() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return httpx.Response(201, json={})

    service = CommandService(
        "http://command.test", transport=httpx.MockTransport(slow), timeout_seconds=0.2
    )
    started = time.monotonic()
    with pytest.raises(CommandUnavailable, match="in time"):
        await service.send("POST", f"{API}/wallets", authorization="Bearer x", body={})
    assert time.monotonic() - started < 2
    await service.aclose()


async def test_an_answer_that_is_not_the_write_apis_is_unavailable() -> None:
    def edge_page(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    service = CommandService("http://command.test", transport=httpx.MockTransport(edge_page))
    with pytest.raises(CommandUnavailable, match="502"):
        await service.send("POST", f"{API}/wallets", authorization="Bearer x", body={})
    await service.aclose()


async def test_the_forwarder_sends_the_callers_own_token_and_key_unchanged() -> None:
    seen: list[httpx.Request] = []

    def command_service(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"position": 7}, headers={"Idempotent-Replayed": "x"})

    service = CommandService("http://edge.test/", transport=httpx.MockTransport(command_service))
    body = {"userId": "u-1", "note": "é"}
    for _ in range(2):
        answer = await service.send(
            "POST",
            f"{API}/wallets",
            authorization="Bearer the.callers.token",
            body=body,
            idempotency_key="k-1",
            tracing={"x-correlation-id": "c-1", "cookie": "never-forwarded"},
        )
    await service.aclose()
    assert (answer.status, answer.body, answer.replayed) == (201, {"position": 7}, False)
    first, second = seen
    assert str(first.url) == "http://edge.test/api/v1/wallets"
    assert first.headers["authorization"] == "Bearer the.callers.token"
    assert first.headers["idempotency-key"] == "k-1"
    assert first.headers["x-correlation-id"] == "c-1"
    assert "cookie" not in first.headers
    # equal inputs, equal bytes: the command service hashes them for the Idempotency-Key
    assert first.content == second.content


async def test_a_member_pays_from_their_own_wallet_never_below_zero(
    gateway: Gateway, writer: httpx.AsyncClient, tokens: Tokens
) -> None:
    member = tokens.member("mut-payer")
    wallet = (await gql(writer, member, OPEN, user="mut-payer"))["data"]["openWallet"]
    topped = await top_up(gateway.api, tokens.ops(), wallet["walletId"], "50.00", "mut-pay-1")
    assert topped.status_code == 201, topped.text

    payment = {"amount": "20.00", "reference": "order-1", "purpose": "pharmacy"}
    body = await gql(writer, member, PAY, wallet=wallet["walletId"], input=payment, key="p-1")
    assert "errors" not in body, body
    paid = body["data"]["payFromWallet"]
    assert (paid["type"], paid["balance"], paid["purpose"], paid["reference"]) == (
        "debit",
        "30.00",
        "pharmacy",
        "order-1",
    )
    again = await gql(writer, member, PAY, wallet=wallet["walletId"], input=payment, key="p-1")
    assert again["data"]["payFromWallet"]["replayed"] is True
    assert again["data"]["payFromWallet"]["balance"] == "30.00"  # paid once

    before = await gateway.api.event_count()
    too_much = {"amount": "30.01", "reference": "order-2"}
    refused = only_error(
        await gql(writer, member, PAY, wallet=wallet["walletId"], input=too_much),
        "payFromWallet",
    )
    assert (refused["code"], refused["problem"], refused["status"]) == (
        "CONFLICT",
        "insufficient_funds",
        409,
    )
    assert await gateway.api.event_count() == before


async def test_a_member_suspends_their_lost_card_and_claims_on_it_are_rejected(
    gateway: Gateway, writer: httpx.AsyncClient, tokens: Tokens
) -> None:
    card = await member_card(gateway, tokens, "mut-lost")
    body = await gql(writer, tokens.member("mut-lost"), SUSPEND, card=card, reason="lost it")
    assert "errors" not in body, body
    suspended = body["data"]["suspendMedcard"]
    assert (suspended["medcardId"], suspended["status"]) == (card, "SUSPENDED")
    assert suspended["eventType"] == "medcard.suspended"

    answer = await claim(gateway.api, tokens.pharmacy(), card, "rx-after-loss", "10.00")
    assert answer.json()["decision"] == "rejected"
    assert answer.json()["reasons"] == ["card_suspended"]

    await gateway.project_new()
    read = await gql(
        writer,
        tokens.member("mut-lost"),
        "query($id: ID!, $p: Long) { medcard(id: $id, minPosition: $p) { status } }",
        id=card,
        p=suspended["position"],
    )
    assert read["data"]["medcard"] == {"status": "SUSPENDED"}

"""The operator's commands against a real PostgreSQL: history, status, rebuild."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from cli import events as history
from cli import projections as ops
from tests.api.support import Api, Tokens, api_settings, beneficiary_body, running_api
from tests.isolation import isolated_settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(postgres_url: str) -> AsyncIterator[Api]:
    async with running_api("postgres", postgres_url) as running:
        yield running


async def _card_with_history(api: Api) -> str:
    tokens = Tokens(api_settings())
    card = await api.client.post(
        "/api/v1/medcards", json={"userId": "u-ops", "cardType": "gold"}, headers=tokens.admin()
    )
    card_id: str = card.json()["id"]
    added = await api.client.post(
        f"/api/v1/medcards/{card_id}/beneficiaries", json=beneficiary_body(), headers=tokens.admin()
    )
    assert added.status_code == 201, added.text
    claimed = await api.client.post(
        f"/api/v1/medcards/{card_id}/claims/prescriptions",
        json={"prescriptionId": "rx-ops-1", "totalAmount": "350.00"},
        headers=tokens.pharmacy(),
    )
    assert claimed.status_code == 201
    return card_id


async def test_events_show_prints_the_decoded_history_in_version_order(
    api: Api, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    card_id = await _card_with_history(api)
    assert await asyncio.to_thread(history.show, postgres_url, card_id) == 0  # type: ignore[arg-type]
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [line.split()[1] for line in lines] == ["v1", "v2", "v3"]
    assert "medcard.claim_adjudicated" in lines[2]
    assert '"covered_amount":"315.00"' in lines[2]


def test_personal_numbers_are_masked_in_anything_printed() -> None:
    text = history.mask('{"national_id": "29001150100123", "phone_number": "+201012345678"}')
    assert "29001150100123" not in text
    assert "+201012345678" not in text
    assert text.count("*") == 11 + 10


async def test_events_tail_from_the_start_prints_every_committed_event(
    api: Api, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await _card_with_history(api)
    stop = threading.Event()
    done = await asyncio.to_thread(history.tail, postgres_url, True, stop, 3)
    assert done == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


async def test_status_and_rebuild_report_what_the_read_models_lack_and_then_fix_it(
    api: Api, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await _card_with_history(api)
    settings = isolated_settings(postgres_url=postgres_url)
    assert await asyncio.to_thread(ops.status, settings) == 0
    out = capsys.readouterr().out
    assert "event store: 3 events" in out
    assert "nothing projected yet" in out
    assert "Kafka unreachable: lag unknown" in out  # the balances group's offsets live in Kafka

    # nothing was projected: a dry run finds the live tables behind and fails
    assert await asyncio.to_thread(ops.run_rebuild, settings, "all", True) == 1
    assert "missing 1" in capsys.readouterr().out
    assert await asyncio.to_thread(ops.run_rebuild, settings, "all", False) == 0
    out = capsys.readouterr().out
    assert "swapped in" in out
    # this test has no CQL store: `all` reports the balances skipped (never someone else's)
    assert f"balances: SKIPPED, CQL store {settings.scylla_hosts} unreachable" in out
    assert await asyncio.to_thread(ops.run_rebuild, settings, "all", True) == 0
    assert await asyncio.to_thread(ops.run_rebuild, settings, "nonsense", True) == 2

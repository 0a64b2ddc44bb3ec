"""schemas/sql/0005 on a database that earlier versions wrote: Idempotency-Keys scoped by
`role:sub` move to their (role, sub, pharmacy) scope where the stored event says which
pharmacy sent them, and still replay afterwards."""

from __future__ import annotations

import psycopg
import pytest

from infrastructure.postgres.migrations import bundled_migrations, migrate
from tests.api.support import (
    API,
    Tokens,
    api_settings,
    claim,
    created,
    issue_card,
    repeat_of,
    running_api,
)
from tests.integration.postgres_harness import PostgresHarness

pytestmark = pytest.mark.integration
MIGRATION = "0005_idempotency_scope.sql"
BRANCH = "ph:1%"  # the escaped characters, so that SQL and Python must agree on them


@pytest.fixture
def before_0005(postgres_harness: PostgresHarness) -> str:
    url = postgres_harness.create_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return url


def _rows(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT key, principal FROM idempotency_keys").fetchall())


async def test_old_keys_move_to_their_pharmacy_scope_and_still_replay(before_0005: str) -> None:
    url, tokens = before_0005, Tokens(api_settings())
    # Every other migration is applied: today's code needs their tables (0006's reservations
    # on every claim), and none of them touches the keys 0005 moves.
    earlier = [m for m in bundled_migrations() if m.name != MIGRATION]
    assert await migrate(url, earlier) == [m.name for m in earlier]
    till = tokens.pharmacy(BRANCH, sub="till-user")
    async with running_api("postgres", url) as api:
        card = await issue_card(api, tokens.admin(), "m-1")
        original = created(
            await claim(api, {**till, "Idempotency-Key": "k-a"}, card["id"], "rx-1", "100.00")
        )
        # an identical repeat under a new key: its answer is the earlier event (sent unkeyed)
        created(await claim(api, till, card["id"], "rx-2", "50.00"))
        await claim(api, {**till, "Idempotency-Key": "k-b"}, card["id"], "rx-2", "50.00")
        suspended = await api.client.post(
            f"{API}/medcards/{card['id']}/suspend",
            headers={**tokens.member("m-1"), "Idempotency-Key": "k-c"},
        )
        assert suspended.status_code == 200, suspended.text
    with psycopg.connect(url, autocommit=True) as conn:  # what earlier versions stored
        conn.execute(
            "UPDATE idempotency_keys SET principal = regexp_replace(principal, '@.*?:', ':')"
        )
    assert _rows(url) == {
        "k-a": "pharmacy:till-user",
        "k-b": "pharmacy:till-user",
        "k-c": "member:m-1",
    }

    assert MIGRATION in await migrate(url)

    assert _rows(url) == {
        "k-a": "pharmacy@ph%3A1%25:till-user",  # its event names the pharmacy that sent it
        "k-b": "pharmacy:till-user",  # its event is another request's: unknown, left alone
        "k-c": "member:m-1",
    }
    async with running_api("postgres", url) as api:
        before = await api.events()
        again = await claim(api, {**till, "Idempotency-Key": "k-a"}, card["id"], "rx-1", "100.00")
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == repeat_of(original)
        assert await api.events() == before

"""`healthpay sms opt-out|opt-in|language --card ID`: a member's SMS choices, per card,
in `sms_preferences`; the notifier reads them as it stores each message."""

from __future__ import annotations

from uuid import UUID

import psycopg

_UPSERT = """
INSERT INTO sms_preferences (card_id, language, opted_out) VALUES (%(card)s, %(language)s,
  coalesce(%(opted_out)s, false))
ON CONFLICT (card_id) DO UPDATE SET
  language = coalesce(%(language)s, sms_preferences.language),
  opted_out = coalesce(%(opted_out)s, sms_preferences.opted_out),
  updated_at = now()
"""


def set_preference(
    postgres_url: str, card: UUID, *, opted_out: bool | None = None, language: str | None = None
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(_UPSERT, {"card": card, "language": language, "opted_out": opted_out})


def run(postgres_url: str, command: str, card: UUID, language: str | None) -> int:
    if command == "opt-out":
        set_preference(postgres_url, card, opted_out=True)
        print(f"card {card}: no SMS from now on")
    elif command == "opt-in":
        set_preference(postgres_url, card, opted_out=False)
        print(f"card {card}: SMS on")
    else:
        set_preference(postgres_url, card, language=language)
        print(f"card {card}: SMS in {language}")
    return 0

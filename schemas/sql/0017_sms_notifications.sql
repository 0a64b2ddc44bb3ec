-- SMS notifications (projection_service/notifier): the notifier's own state, kept from the
-- stream in the same transaction as the messages it derives, so it never waits for (or
-- reads behind) the read models. docs/notifications.md.

-- Who gets a card's messages: every holder with a phone (the primary one too), by card.
CREATE TABLE sms_contacts (
  beneficiary_id UUID PRIMARY KEY,
  card_id UUID NOT NULL,
  user_id TEXT,  -- the card's user, on the primary holder's row (wallets are the user's)
  phone_number TEXT,
  is_primary BOOLEAN NOT NULL
);
CREATE INDEX idx_sms_contacts_card ON sms_contacts (card_id);
CREATE INDEX idx_sms_contacts_user ON sms_contacts (user_id) WHERE is_primary;

-- A wallet's owner (its events carry only the wallet id), from wallet.opened.
CREATE TABLE sms_wallets (
  wallet_id UUID PRIMARY KEY,
  user_id TEXT NOT NULL
);

-- The member's choices, per card (`healthpay sms opt-out|opt-in|language`). No row: the
-- default language (SMS_DEFAULT_LANGUAGE) and messages on.
CREATE TABLE sms_preferences (
  card_id UUID PRIMARY KEY,
  language TEXT CHECK (language IN ('ar', 'en')),
  opted_out BOOLEAN NOT NULL DEFAULT false,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per message: stored before it is sent, marked once Cequens accepted it. The key
-- makes an event read twice (a restart before the offsets were committed) a no-op;
-- `once_key` makes the benefit thresholds once per card and month, whichever claim crossed.
CREATE TABLE sms_outbox (
  event_id UUID NOT NULL,
  recipient TEXT NOT NULL,
  kind TEXT NOT NULL,
  card_id UUID NOT NULL,
  once_key TEXT UNIQUE,
  language TEXT NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
  attempts INT NOT NULL DEFAULT 0,
  next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  provider_message_id TEXT,
  last_error TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  sent_at TIMESTAMPTZ,
  PRIMARY KEY (event_id, recipient, kind)
);
CREATE INDEX idx_sms_outbox_pending ON sms_outbox (next_attempt_at) WHERE status = 'pending';

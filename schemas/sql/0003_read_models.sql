-- Read models built by projection_service/read_models from the event stream (docs/design.md §5).
--
-- The seed's medcards / beneficiaries / prescription_claims / prescription_items keep the
-- seed's column names; deviations are marked "seed:". What every projected row shares:
--   * `version` is the aggregate version the row reflects. Writes are guarded by
--     `WHERE row.version < new.version`, so a redelivered or replayed event is a no-op.
--   * Every value comes from the events (no DEFAULT now()): a rebuild from the event store
--     reproduces the live tables row for row, which is how the two are compared.
--   * No Kafka or wall-clock state lives here except in projection_offsets, parked_events
--     and projection_checkpoints, which a rebuild leaves alone.
-- Money is DECIMAL(12,2) as in the seed (API amounts have at most 12 digits); running
-- balances get DECIMAL(14,2) because they accumulate many amounts.

CREATE TABLE medcards (
  id UUID PRIMARY KEY,
  -- seed: UUID. User ids are opaque strings (docs/design.md §6; the seed's E2E sends "test-user-1").
  user_id TEXT NOT NULL,
  card_number VARCHAR(20) UNIQUE NOT NULL,
  card_type VARCHAR(20) NOT NULL,
  status VARCHAR(30) NOT NULL
    CHECK (status IN ('PENDING', 'ACTIVE', 'SUSPENDED', 'EXPIRED', 'CANCELLED')),
  monthly_limit DECIMAL(12,2) NOT NULL,
  -- Spent in `current_month`: the month_spent_after of the card's latest claim or reversal
  -- in the latest benefit month its events name (Africa/Cairo calendar months). A reader
  -- whose Cairo month is later than current_month must read 0: nothing was spent yet.
  current_month_spent DECIMAL(12,2) NOT NULL DEFAULT 0,
  copayment_percentage DECIMAL(5,2) NOT NULL,
  -- the primary holder as issued (also a row in beneficiaries, with is_primary)
  primary_holder JSONB NOT NULL,
  insurance_provider VARCHAR(100),
  policy_number VARCHAR(50),
  expiry_date DATE NOT NULL,
  -- seed: DEFAULT NOW(). Here the store time of the issuing event and of the card's latest
  -- event, so a rebuild reproduces them.
  created_at TIMESTAMP WITH TIME ZONE NOT NULL,
  updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
  current_month TEXT,  -- 'YYYY-MM'; NULL until the first claim
  max_beneficiaries INT NOT NULL,
  currency CHAR(3) NOT NULL,
  issued_at TIMESTAMP WITH TIME ZONE NOT NULL,
  -- every event of the card's stream advances these: a client holding the version a
  -- command answered can wait until the read side reflects it
  version INT NOT NULL,
  last_position BIGINT NOT NULL
);

CREATE INDEX idx_medcards_user ON medcards (user_id);
CREATE INDEX idx_medcards_status ON medcards (status);
-- seed: idx_medcards_card_number. Left out: the UNIQUE constraint's index is that index.

-- Removal sets removed_at instead of deleting the row: past claims keep naming their
-- beneficiary, and the row's version keeps guarding it (a deleted row could not tell a
-- replayed, older "beneficiary added" from a new one and would come back to life).
CREATE TABLE beneficiaries (
  id UUID PRIMARY KEY,
  medcard_id UUID NOT NULL REFERENCES medcards (id),
  relationship VARCHAR(20) NOT NULL,
  -- seed: NOT NULL. A card may be issued without the holder's personal details (the seed's
  -- E2E sends none), and the primary holder is a beneficiary like any other.
  national_id VARCHAR(14),
  name VARCHAR(100),
  date_of_birth DATE,
  phone_number VARCHAR(15),
  -- seed: DEFAULT NOW(); here the event's time
  added_at TIMESTAMP WITH TIME ZONE NOT NULL,
  is_primary BOOLEAN NOT NULL,
  removed_at TIMESTAMP WITH TIME ZONE,
  version INT NOT NULL
);

CREATE INDEX idx_beneficiaries_medcard ON beneficiaries (medcard_id);

-- Every adjudication is a row, rejections too (the card's history explains itself).
CREATE TABLE prescription_claims (
  id UUID PRIMARY KEY,
  medcard_id UUID NOT NULL REFERENCES medcards (id),
  -- seed: UUID. Prescription and pharmacy ids are opaque strings (docs/design.md §6; the seed's
  -- E2E sends "rx-test-1"); pharmacy_id (seed: VARCHAR(50)) comes from a token, unbounded.
  prescription_id TEXT NOT NULL,
  pharmacy_id TEXT NOT NULL,
  beneficiary_id UUID NOT NULL,
  total_amount DECIMAL(12,2) NOT NULL,
  covered_amount DECIMAL(12,2) NOT NULL,
  copayment_amount DECIMAL(12,2) NOT NULL,
  -- seed: DEFAULT NOW(); here the claim's time
  claimed_at TIMESTAMP WITH TIME ZONE NOT NULL,
  decision VARCHAR(20) NOT NULL CHECK (decision IN ('approved', 'partially_approved', 'rejected')),
  -- decision, or 'reversed' once reversed (decision keeps what was decided)
  status VARCHAR(20) NOT NULL
    CHECK (status IN ('approved', 'partially_approved', 'rejected', 'reversed')),
  reasons TEXT[] NOT NULL,
  month TEXT NOT NULL,
  copay_percent DECIMAL(5,2) NOT NULL,
  monthly_limit DECIMAL(12,2) NOT NULL,
  month_spent_after DECIMAL(12,2) NOT NULL,
  remaining_after DECIMAL(12,2) NOT NULL,
  copayment_paid_from_wallet DECIMAL(12,2) NOT NULL,
  wallet_id UUID,
  reversed_at TIMESTAMP WITH TIME ZONE,
  reversal_reason TEXT,
  position BIGINT NOT NULL,  -- of the adjudication: stable, for position-ordered feeds
  version INT NOT NULL
);

-- seed: (medcard_id) and (claimed_at DESC). Widened with id so that keyset pagination by
-- (claimed_at, id) is one index range; the seed's check query uses idx_..._date.
CREATE INDEX idx_prescription_claims_medcard
  ON prescription_claims (medcard_id, claimed_at DESC, id DESC);
CREATE INDEX idx_prescription_claims_date ON prescription_claims (claimed_at DESC, id DESC);
CREATE INDEX idx_prescription_claims_pharmacy
  ON prescription_claims (pharmacy_id, claimed_at DESC, id DESC);
CREATE INDEX idx_prescription_claims_prescription
  ON prescription_claims (medcard_id, prescription_id);

CREATE TABLE prescription_items (
  id UUID PRIMARY KEY,
  claim_id UUID NOT NULL REFERENCES prescription_claims (id),
  line_no INT NOT NULL,  -- the item's place in the prescription
  drug_code VARCHAR(50) NOT NULL,
  drug_name VARCHAR(200) NOT NULL,
  quantity INT NOT NULL,
  unit_price DECIMAL(12,2) NOT NULL,
  total_price DECIMAL(12,2) NOT NULL,
  covered_amount DECIMAL(12,2) NOT NULL,
  copayment_amount DECIMAL(12,2) NOT NULL,
  version INT NOT NULL
);

CREATE INDEX idx_prescription_items_claim ON prescription_items (claim_id, line_no);

-- The PostgreSQL twin of Scylla's healthpay_balances.medcard_monthly_spend (GraphQL
-- monthlySpend(month)): month_spent_after of the card's latest claim or reversal in `month`.
CREATE TABLE medcard_monthly_spend (
  medcard_id UUID NOT NULL REFERENCES medcards (id),
  month TEXT NOT NULL,
  total_spent DECIMAL(12,2) NOT NULL,
  last_updated TIMESTAMP WITH TIME ZONE NOT NULL,
  version INT NOT NULL,
  PRIMARY KEY (medcard_id, month)
);

CREATE TABLE wallets (
  id UUID PRIMARY KEY,
  owner_user_id TEXT NOT NULL,
  currency CHAR(3) NOT NULL,
  balance DECIMAL(14,2) NOT NULL,
  opened_at TIMESTAMP WITH TIME ZONE NOT NULL,
  updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
  version INT NOT NULL,
  last_position BIGINT NOT NULL,
  UNIQUE (owner_user_id, currency)  -- one wallet per member and currency (domain rule)
);

-- One row per top-up, debit or refund. The key includes the type: a claim's copayment
-- debit and the refund of its reversal both carry the claim's id.
CREATE TABLE wallet_transactions (
  id UUID NOT NULL,
  type VARCHAR(10) NOT NULL CHECK (type IN ('topup', 'debit', 'refund')),
  wallet_id UUID NOT NULL REFERENCES wallets (id),
  amount DECIMAL(12,2) NOT NULL,
  balance_after DECIMAL(14,2) NOT NULL,
  gateway VARCHAR(20),  -- top-ups only
  -- top-up: the gateway's reference; debit: the caller's reference; refund: the refunded
  -- debit's id
  reference TEXT,
  -- debit: its purpose ('purchase', 'claim_copayment'); refund: its reason
  purpose TEXT,
  at TIMESTAMP WITH TIME ZONE NOT NULL,
  version INT NOT NULL,
  position BIGINT NOT NULL,
  PRIMARY KEY (id, type)
);

CREATE INDEX idx_wallet_transactions_wallet ON wallet_transactions (wallet_id, position DESC);

-- Double entry (docs/design.md §6): each money event's legs sum to zero, so the whole table does.
CREATE TABLE ledger_postings (
  event_id UUID NOT NULL,
  leg SMALLINT NOT NULL,  -- the leg's place in the event
  account TEXT NOT NULL,
  amount DECIMAL(14,2) NOT NULL,  -- positive credits the account, negative debits it
  aggregate_id UUID NOT NULL,
  version INT NOT NULL,
  position BIGINT NOT NULL,
  at TIMESTAMP WITH TIME ZONE NOT NULL,
  PRIMARY KEY (event_id, leg)
);

CREATE INDEX idx_ledger_postings_account ON ledger_postings (account, position);

-- Per aggregate, the version the read models reflect. Events are applied strictly in
-- version order: at or below `version` is a duplicate (no-op); above version + 1 waits in
-- projection_held_events until the gap closes, so batches arriving out of order per
-- aggregate converge to the same tables. has_held says whether to look there at all.
CREATE TABLE projection_streams (
  aggregate_id UUID PRIMARY KEY,
  aggregate_type VARCHAR(50) NOT NULL,
  version INT NOT NULL,
  has_held BOOLEAN NOT NULL
);

-- Events that arrived ahead of a gap in their stream, verbatim. `parked` marks the place of
-- a parked (poison) event: the stream skips it instead of waiting for it forever.
CREATE TABLE projection_held_events (
  aggregate_id UUID NOT NULL,
  version INT NOT NULL,
  event_id UUID NOT NULL,
  position BIGINT NOT NULL,
  aggregate_type VARCHAR(50) NOT NULL,
  event_type VARCHAR(100) NOT NULL,
  schema_version INT NOT NULL,
  event_data JSONB NOT NULL,
  metadata JSONB NOT NULL,
  timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
  parked BOOLEAN NOT NULL,
  PRIMARY KEY (aggregate_id, version)
);

-- Consumer state, never rebuilt: the Kafka offset to resume from, per projection and
-- partition, stored in the same transaction as the read-model changes it covers.
CREATE TABLE projection_offsets (
  projection TEXT NOT NULL,
  topic TEXT NOT NULL,
  partition INT NOT NULL,
  next_offset BIGINT NOT NULL,
  updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
  PRIMARY KEY (projection, topic, partition)
);

-- How far a replay from the event store got (rebuilds report progress here).
CREATE TABLE projection_checkpoints (
  projection TEXT PRIMARY KEY,
  position BIGINT NOT NULL,
  events BIGINT NOT NULL,
  updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()
);

-- Dead letters: events a projection could not apply (unknown type or version, payload that
-- fails validation, a row the database refuses), with where they came from. Raw Kafka
-- messages that are not even an envelope have no event_id and keep their bytes in `raw`.
CREATE TABLE parked_events (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  projection TEXT NOT NULL,
  event_id UUID,
  aggregate_id UUID,
  aggregate_type VARCHAR(50),
  event_type VARCHAR(100),
  schema_version INT,
  version INT,
  position BIGINT,
  topic TEXT,
  partition INT,
  kafka_offset BIGINT,
  error TEXT NOT NULL,
  payload JSONB,
  metadata JSONB,
  raw BYTEA,
  attempts INT NOT NULL DEFAULT 1,
  parked_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX idx_parked_events_event
  ON parked_events (projection, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX idx_parked_events_parked_at ON parked_events (parked_at);

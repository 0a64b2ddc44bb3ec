-- Event store: the seed's `events` table plus what a production store needs (docs/design.md §4).
-- Applied once by infrastructure/postgres/migrations.py, inside a transaction.

CREATE TABLE events (
  event_id UUID PRIMARY KEY,
  aggregate_id UUID NOT NULL,
  aggregate_type VARCHAR(50) NOT NULL,
  event_type VARCHAR(100) NOT NULL,
  version INT NOT NULL,
  event_data JSONB NOT NULL,
  timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
  -- Global order. Identity values are handed out before commit, so they commit out of
  -- order: a tailer must not read `position > last` alone (see transaction_id).
  position BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
  -- The writing transaction. The relay reads only rows whose transaction is older than the
  -- oldest one still running, in (transaction_id, position) order: a commit-safe tail.
  transaction_id XID8 NOT NULL DEFAULT pg_current_xact_id(),
  schema_version INT NOT NULL DEFAULT 1,
  -- correlation/causation ids, actor, idempotency key
  metadata JSONB NOT NULL DEFAULT '{}',
  UNIQUE (aggregate_id, version),
  CHECK (version > 0)
);

CREATE INDEX idx_events_aggregate ON events (aggregate_id, version);
CREATE INDEX idx_events_type ON events (event_type);
CREATE INDEX idx_events_timestamp ON events (timestamp DESC);
CREATE INDEX idx_events_transaction ON events (transaction_id, position);

-- Latest state of long streams; the aggregate loads it and then the events after `version`.
CREATE TABLE snapshots (
  aggregate_id UUID PRIMARY KEY,
  aggregate_type VARCHAR(50) NOT NULL,
  version INT NOT NULL,
  schema_version INT NOT NULL,
  state JSONB NOT NULL,
  taken_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()
);

-- Stored answers to POSTs carrying an Idempotency-Key, scoped per caller. Written in the same
-- transaction as the request's events, so an answer exists if and only if its events do.
CREATE TABLE idempotency_keys (
  principal TEXT NOT NULL,
  key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  status_code INT NOT NULL,
  response_body BYTEA NOT NULL,
  created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
  PRIMARY KEY (principal, key)
);

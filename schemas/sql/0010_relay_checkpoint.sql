-- Where the relay has published up to, in the commit-safe order (transaction_id, position).
-- One row per relay name; it moves forward only after Kafka confirmed delivery.
CREATE TABLE relay_checkpoints (
  relay TEXT PRIMARY KEY,
  transaction_id XID8 NOT NULL,
  position BIGINT NOT NULL,
  published BIGINT NOT NULL DEFAULT 0,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

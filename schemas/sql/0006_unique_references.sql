-- Keys that must be unique, decided at write time (issue 9). The event store inserts a row
-- in the same transaction as the event that takes the key, so a clash fails that request
-- alone, atomically, in whichever process it runs; no cache is trusted for the rule.
--   card_number        a card's number (never freed)
--   gateway_reference  pair_key(gateway, reference) of a top-up: one wallet, ever
--   prescription       the card id's 32 hex digits || prescription id, of a charged claim;
--                      its reversal deletes the row in the reversal's transaction
-- pair_key(a, b) = length(a) || ':' || a || b (domain/wallet/model.py); domain/uniqueness.py
-- builds every key.
-- `event_id` is the event holding the key (a replay answers from it). No foreign key: the
-- store writes both rows in one transaction, and the check would cost every claim.
CREATE TABLE reservations (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  event_id UUID NOT NULL,
  PRIMARY KEY (scope, key)
);

-- What the events already hold. Where history has a clash (the reason for this table), the
-- first event in position order keeps the key.
INSERT INTO reservations (scope, key, event_id)
SELECT DISTINCT ON (event_data->>'card_number')
       'card_number', event_data->>'card_number', event_id
FROM events WHERE event_type = 'medcard.issued'
ORDER BY event_data->>'card_number', position
ON CONFLICT DO NOTHING;

INSERT INTO reservations (scope, key, event_id)
SELECT DISTINCT ON (k.key) 'gateway_reference', k.key, k.event_id
FROM (
  SELECT length(event_data->>'gateway')::text || ':' || (event_data->>'gateway')
         || (event_data->>'gateway_reference') AS key, event_id, position
  FROM events WHERE event_type = 'wallet.topped_up'
) AS k
ORDER BY k.key, k.position
ON CONFLICT DO NOTHING;

-- A prescription is held by its charged (not rejected), unreversed claim; the domain never
-- adjudicates a prescription again while such a claim stands, so there is at most one.
WITH reversed AS (
  SELECT aggregate_id, event_data->>'claim_id' AS claim_id
  FROM events WHERE event_type = 'medcard.claim_reversed'
)
INSERT INTO reservations (scope, key, event_id)
SELECT DISTINCT ON (k.key) 'prescription', k.key, k.event_id
FROM (
  SELECT replace(c.aggregate_id::text, '-', '') || (c.event_data->>'prescription_id') AS key,
         c.event_id, c.position
  FROM events AS c
  LEFT JOIN reversed AS r
    ON r.aggregate_id = c.aggregate_id AND r.claim_id = c.event_data->>'claim_id'
  WHERE c.event_type = 'medcard.claim_adjudicated'
    AND c.event_data->>'decision' <> 'rejected'
    AND r.claim_id IS NULL
) AS k
ORDER BY k.key, k.position DESC
ON CONFLICT DO NOTHING;

-- Velocity flags (domain/medcard/velocity.py): one row per flag a claim carries in its
-- medcard.claim_adjudicated v2 event (`flags`). A claim written as v1 carries none. Rows are
-- facts: a reversal leaves them (the flag is about what was tried). Read by
-- `healthpay fraud flags [--card] [--since]`.
CREATE TABLE fraud_flags (
  claim_id UUID NOT NULL,
  flag TEXT NOT NULL,
  medcard_id UUID NOT NULL,
  beneficiary_id UUID NOT NULL,
  pharmacy_id TEXT NOT NULL,
  total_amount DECIMAL(12,2) NOT NULL,
  claimed_at TIMESTAMP WITH TIME ZONE NOT NULL,
  position BIGINT NOT NULL,
  version INT NOT NULL,
  PRIMARY KEY (claim_id, flag)
);

CREATE INDEX idx_fraud_flags_claimed_at ON fraud_flags (claimed_at);
CREATE INDEX idx_fraud_flags_medcard ON fraud_flags (medcard_id, claimed_at);

-- medcard.claim_adjudicated v2: an item's days supply; NULL: not told (every v1 item).
ALTER TABLE prescription_items ADD COLUMN days_supply INT;

-- Benefit holds (domain/medcard/holds.py), one row per hold: 'open' from medcard.hold_placed
-- until medcard.hold_captured ('captured', with the claim) or medcard.hold_voided ('voided').
-- An open hold past expires_at is expired: the reads compare it with the time they answer at
-- (no event marks an expiry, as none is needed for the limit to be right).
CREATE TABLE medcard_holds (
  id UUID PRIMARY KEY,
  medcard_id UUID NOT NULL REFERENCES medcards (id),
  prescription_id TEXT NOT NULL,
  pharmacy_id TEXT NOT NULL,
  beneficiary_id UUID NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  month TEXT NOT NULL,
  expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
  placed_at TIMESTAMP WITH TIME ZONE NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('open', 'captured', 'voided')),
  claim_id UUID,
  used_amount DECIMAL(12,2),
  closed_at TIMESTAMP WITH TIME ZONE,
  position BIGINT NOT NULL,
  version INT NOT NULL
);
-- The card read's open holds: the few rows still open on one card.
CREATE INDEX medcard_holds_open ON medcard_holds (medcard_id, expires_at) WHERE status = 'open';

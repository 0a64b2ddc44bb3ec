-- The member's consent to claims' copayments paid from the wallet (wallet.copay_consent_set,
-- issue 9): 0 and 0, no consent, until the member sets it; set_at NULL: never set.
ALTER TABLE wallets
  ADD COLUMN copay_per_claim_limit DECIMAL(12,2) NOT NULL DEFAULT 0,
  ADD COLUMN copay_monthly_limit DECIMAL(12,2) NOT NULL DEFAULT 0,
  ADD COLUMN copay_consent_set_at TIMESTAMP WITH TIME ZONE;

-- A claim's copayment the wallet declined (wallet.copay_declined) is on the member's statement:
-- amount = the copayment asked, balance_after = the unchanged balance, reference = the claim
-- id, purpose = why ('no_consent', 'over_claim_limit', 'over_monthly_limit',
-- 'insufficient_funds'). The pharmacy never reads this table.
ALTER TABLE wallet_transactions DROP CONSTRAINT wallet_transactions_type_check;
ALTER TABLE wallet_transactions ADD CONSTRAINT wallet_transactions_type_check
  CHECK (type IN ('topup', 'debit', 'refund', 'declined'));

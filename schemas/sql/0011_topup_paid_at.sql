-- wallet.topped_up v2 (domain/upcasting.py): when the gateway says the member paid, as its
-- callback tells it. NULL: not told, which is every top-up written as v1 (rows already here
-- were projected from v1, so NULL is their value too; no backfill).
ALTER TABLE wallet_transactions ADD COLUMN paid_at TIMESTAMP WITH TIME ZONE;

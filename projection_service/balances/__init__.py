"""The balance projection: wallet balances and card-month spend in the CQL store."""

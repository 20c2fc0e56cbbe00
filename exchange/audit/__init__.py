"""The audit ledger: append-only, encrypted, hash-chained entries."""

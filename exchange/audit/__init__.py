"""The audit ledger: append-only encrypted entries in a Merkle tree with signed checkpoints."""

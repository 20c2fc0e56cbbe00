"""Keys, envelope encryption, blind indexes and the shaping of disclosures."""

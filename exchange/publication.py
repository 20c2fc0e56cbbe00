"""What the exchange publishes about itself, for anyone: its addresses, the keys that verify
its access tokens, checkpoints and receipts. Built once; holds no secrets."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Publication:
    base_url: str
    fhir_base: str
    token_url: str
    software_version: str
    token_jwks: dict[str, Any]
    signing_key_pem: str  # Ed25519: audit checkpoints and consent receipts

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/.well-known/jwks.json"

"""Signed consent receipts: what a resident granted or revoked, verifiable offline.

A receipt is canonical JSON (sorted keys, no spaces) signed with the exchange's Ed25519
key, the same key that signs audit checkpoints, published at
``/.well-known/exchange-signing-key.pem``. To verify: remove ``signature``, serialize
canonically, check the Ed25519 signature over those bytes.
"""

import base64
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consent.model import TEMPLATE, policy_view

RECEIPT_NAMESPACE = uuid.UUID("8d0c2a53-6f57-4e43-9d0a-4c4e1c1d7a11")


class ReceiptError(Exception):
    """A receipt whose signature does not verify."""


def build_receipt(consent: dict[str, Any], version: int, revoked: bool, policy_revision: str,
                  issued_at: datetime, zone: tzinfo = UTC) -> dict[str, Any]:
    view = policy_view(consent, version, zone)
    provision = view["provision"]
    template = next((e.get("valueString") for e in consent.get("extension") or []
                     if e.get("url") == TEMPLATE), None)
    template_id, _, template_version = (template or "").partition("|")
    action = "revoke" if revoked or consent.get("status") != "active" else (
        "grant" if version == 1 else "change")
    ref = f"{view['id']}/_history/{version}"
    return {
        "receipt_id": str(uuid.uuid5(RECEIPT_NAMESPACE, f"{ref}/{action}")),
        "issued_at": issued_at.isoformat(),
        "action": action,
        "consent": ref,
        "resident": (consent.get("patient") or {}).get("reference"),
        "decision": provision["type"],
        "recipients": provision["actors"],
        "recipient_kinds": provision["actor_kinds"],
        "purposes": provision["purposes"],
        "data_classes": data_classes(provision) or ["all"],
        "sensitive_labels": [label["code"] for label in provision["labels"]],
        "exceptions": [{"decision": q["type"], "data_classes": data_classes(q),
                        "purposes": q["purposes"]} for q in provision["provisions"]],
        "period": (consent.get("provision") or {}).get("period") or {},
        "disclosure_form": provision["form"],
        "template": {"id": template_id, "version": template_version} if template else None,
        "policy_revision": policy_revision,
    }


def data_classes(provision: dict[str, Any]) -> list[str]:
    """Whole types by name, categories as ``system|code``: what the resident chose."""
    return [*provision["classes"],
            *(f"{c['system']}|{c['code']}" for c in provision.get("categories", []))]


def canonical(receipt: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in receipt.items() if k != "signature"},
                        option=orjson.OPT_SORT_KEYS)


def sign_receipt(receipt: dict[str, Any],
                 sign: Callable[[bytes], bytes]) -> dict[str, Any]:
    signature = sign(canonical(receipt))
    return {**receipt, "signature": {"alg": "Ed25519",
                                     "value": base64.b64encode(signature).decode()}}


def verify_receipt(receipt: dict[str, Any], public: Ed25519PublicKey) -> None:
    try:
        signature = base64.b64decode(receipt["signature"]["value"], validate=True)
        public.verify(signature, canonical(receipt))
    except (KeyError, TypeError, ValueError, InvalidSignature):
        raise ReceiptError("the receipt's signature does not verify") from None

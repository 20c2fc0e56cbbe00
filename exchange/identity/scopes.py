"""SMART on FHIR scopes (v2 ``system/Observation.rs``; v1 ``.read``/``.write`` accepted)."""

import re
from dataclasses import dataclass
from typing import Any

from exchange.fhir.search_params import SUPPORTED_TYPES

_SCOPE = re.compile(r"(?P<ctx>system|patient|user)/(?P<type>\*|[A-Z][A-Za-z]+)\."
                    r"(?P<perm>read|write|\*|c?r?u?d?s?)\Z")
# Types that are not stored resources but views the policies guard (the audit trail).
SCOPE_ONLY_TYPES = frozenset({"AuditEvent"})
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


@dataclass(frozen=True)
class Scope:
    text: str
    context: str
    resource_type: str
    interactions: str  # a subset of "cruds", in that order

    def policy_view(self) -> dict[str, Any]:
        return {"text": self.text, "context": self.context,
                "resource_type": self.resource_type, "interactions": self.interactions}


def parse_scope(text: str) -> Scope | None:
    """A resource scope, or None for anything else (``openid``, granular queries, junk)."""
    match = _SCOPE.match(text)
    if match is None or not match["perm"]:
        return None
    rtype = match["type"]
    if rtype != "*" and rtype not in SUPPORTED_TYPES and rtype not in SCOPE_ONLY_TYPES:
        return None
    return Scope(text, match["ctx"], rtype, _V1.get(match["perm"], match["perm"]))


def parse_scopes(text: str) -> list[Scope]:
    return [s for s in (parse_scope(t) for t in text.split()) if s is not None]

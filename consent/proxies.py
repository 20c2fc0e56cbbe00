"""Proxies: family members or guardians a resident registered as a FHIR ``RelatedPerson``.

The delegation is the RelatedPerson itself: ``patient`` (whom they act for), ``active``,
``period``, and the rights granted as extensions (``read`` the record, manage ``consent``).
It is read afresh for every request, so withdrawing a delegation takes effect at once.
"""

from datetime import UTC, tzinfo
from typing import Any

from consent.model import _period

DELEGATION_RIGHT = "https://fhir.community-exchange.example/StructureDefinition/delegation-right"
RIGHTS = ("read", "consent")


def delegation_view(related_person: dict[str, Any],
                    zone: tzinfo = UTC) -> tuple[str | None, dict[str, Any]]:
    """(resident id, delegation as the policies read it)."""
    reference = (related_person.get("patient") or {}).get("reference", "")
    resident = reference.split("/", 1)[1] if isinstance(reference, str) and \
        reference.startswith("Patient/") else None
    rights = sorted({e.get("valueCode") for e in related_person.get("extension") or []
                     if e.get("url") == DELEGATION_RIGHT and e.get("valueCode") in RIGHTS})
    return resident, {"active": related_person.get("active") is True, "rights": rights,
                      "period": _period(related_person.get("period"), zone)}


def build_proxy(patient_id: str, family: str, given: str, relationship: str,
                rights: list[str], period: dict[str, str] | None = None) -> dict[str, Any]:
    person: dict[str, Any] = {
        "resourceType": "RelatedPerson", "active": True,
        "patient": {"reference": f"Patient/{patient_id}"},
        "relationship": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
            "code": relationship}]}],
        "name": [{"family": family, "given": [given]}],
        "extension": [{"url": DELEGATION_RIGHT, "valueCode": r} for r in rights],
    }
    if period:
        person["period"] = period
    return person

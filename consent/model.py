"""FHIR ``Consent`` in and out.

``policy_view`` turns a stored Consent into the plain shape the Rego policies read (see
``policies/exchange/input.schema.json``). It parses; it decides nothing.
"""

from datetime import UTC, datetime
from typing import Any

from exchange.errors import InvalidResource
from exchange.fhir.dates import parse_range

ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_CATEGORY = "http://loinc.org"


def check_consent(resource: dict[str, Any]) -> None:
    """What the exchange needs of a Consent beyond FHIR validity: whose it is, and a rule."""
    patient = (resource.get("patient") or {}).get("reference", "")
    if not isinstance(patient, str) or not patient.startswith("Patient/"):
        raise InvalidResource("A Consent must name its resident.",
                              expression=["Consent.patient"])
    provision = resource.get("provision")
    if not isinstance(provision, dict) or provision.get("type") not in ("permit", "deny"):
        raise InvalidResource("A Consent must have a provision of type permit or deny.",
                              expression=["Consent.provision.type"])


def policy_view(resource: dict[str, Any], version_id: int) -> dict[str, Any]:
    return {
        "id": f"Consent/{resource.get('id')}",
        "version": str(version_id),
        "status": resource.get("status"),
        "period": {"start": None, "end": None},
        "provision": _provision(resource.get("provision") or {}),
    }


def _provision(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": p.get("type"),
        "actors": sorted({a["reference"]["reference"] for a in p.get("actor") or []
                          if isinstance((a.get("reference") or {}).get("reference"), str)}),
        "purposes": sorted({c.get("code") for c in p.get("purpose") or []
                            if isinstance(c.get("code"), str)}),
        "classes": sorted({c.get("code") for c in p.get("class") or []
                           if isinstance(c.get("code"), str)}),
        "period": _period(p.get("period")),
        "provisions": [_provision(q) for q in p.get("provision") or []
                       if isinstance(q, dict)],
    }


def _period(period: Any) -> dict[str, int | None]:
    if not isinstance(period, dict):
        return {"start": None, "end": None}
    out: dict[str, int | None] = {"start": None, "end": None}
    try:
        if isinstance(period.get("start"), str):
            out["start"] = int(parse_range(period["start"])[0].timestamp())
        if isinstance(period.get("end"), str):
            out["end"] = int(parse_range(period["end"])[1].timestamp())
    except ValueError:
        # An unreadable period must not widen a consent: it ends before it begins.
        return {"start": 1, "end": 0}
    return out


def build_consent(patient_id: str, organization: str, purposes: list[str], *,
                  classes: list[str] | None = None, start: datetime | None = None,
                  end: datetime | None = None, except_classes: list[str] | None = None,
                  status: str = "active", when: datetime | None = None) -> dict[str, Any]:
    """A permit from a resident to one organization, for purposes and (optionally) types."""
    provision: dict[str, Any] = {
        "type": "permit",
        "actor": [{
            "role": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "code": "IRCP"}]},
            "reference": {"reference": organization},
        }],
        "purpose": [{"system": ACT_REASON, "code": p} for p in purposes],
    }
    if classes:
        provision["class"] = [{"system": RESOURCE_TYPES, "code": c} for c in classes]
    if start or end:
        provision["period"] = {k: v.astimezone(UTC).isoformat().replace("+00:00", "Z")
                               for k, v in (("start", start), ("end", end)) if v}
    if except_classes:
        provision["provision"] = [{
            "type": "deny",
            "class": [{"system": RESOURCE_TYPES, "code": c} for c in except_classes],
        }]
    return {
        "resourceType": "Consent",
        "status": status,
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": CONSENT_CATEGORY, "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": (when or datetime.now(UTC)).astimezone(UTC).isoformat()
        .replace("+00:00", "Z"),
        "policyRule": {"coding": [{"system": ACT_REASON, "code": "OPTIN"}]},
        "provision": provision,
    }

"""Ledger entries rendered as FHIR R4 ``AuditEvent`` following IHE BALP.

Client = Source Role ID (DCM 110153), server = Destination Role ID (DCM 110152), the
requesting organization or resident as the user agent with ``purposeOfUse``; entities for
the patient (role 1), the data (role 4) and the query (role 24, base64 of the raw query).
"""

import base64
from typing import Any

DCM = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
OUTCOME_DETAIL = "urn:exchange:audit-outcome"
BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit"

# (subtype, action) per ledger action
_INTERACTIONS = {
    "read": ("read", "R"), "vread": ("vread", "R"), "search": ("search-type", "E"),
    "history": ("history-instance", "R"), "everything": ("operation", "E"),
    "create": ("create", "C"), "update": ("update", "U"), "delete": ("delete", "D"),
    "patch": ("patch", "U"),
    "transaction": ("transaction", "E"), "batch": ("batch", "E"),
    "audit-read": ("search-type", "E"),
}
# FHIR R4 AuditEvent.outcome: 0 success, 4 minor failure, 8 serious failure
OUTCOME_CODES = {"success": "0", "denied": "4", "not-found": "4", "refused": "4",
                 "error": "8"}


def outcome_code(outcome: str | None) -> str:
    return OUTCOME_CODES.get(outcome or "", "8")


def render(seq: int, entry: dict[str, Any], server: str) -> dict[str, Any]:
    action = str(entry.get("action"))
    subtype, verb = _INTERACTIONS.get(action, (None, "E"))
    who = entry.get("who") or {}
    purpose = who.get("purpose")
    residents = entry.get("residents") or []
    what = entry.get("what") or {}
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(seq),
        "meta": {"profile": [BALP + (".PatientQuery" if action == "search" and residents
                                     else ".PatientRead" if residents else "")]},
        # Reading the trail is itself an event of its own kind (DICOM "Audit Log Used").
        "type": {"system": DCM, "code": "110101", "display": "Audit Log Used"}
        if action == "audit-read" else
        {"system": AUDIT_TYPE, "code": "rest", "display": "Restful Operation"}
        if subtype else {"system": DCM, "code": "110114", "display": "User Authentication"}
        if action in ("token", "authenticate") else
        {"system": DCM, "code": "110100", "display": "Application Activity"},
        "action": verb,
        "recorded": entry.get("time"),
        "outcome": outcome_code(entry.get("outcome")),
        "outcomeDesc": f"{entry.get('outcome')} ({entry.get('status')})",
        "agent": _agents(who, entry, server, purpose),
        "source": {"observer": {"display": server},
                   "type": [{"system": SOURCE_TYPE, "code": "4",
                             "display": "Application Server"}]},
    }
    if subtype:
        event["subtype"] = [{"system": INTERACTION, "code": subtype}]
    if purpose:
        event["purposeOfEvent"] = [{"coding": [{"system": ACT_REASON, "code": purpose}]}]
    entities: list[dict[str, Any]] = []
    for resident in residents:
        entities.append({"what": {"reference": f"Patient/{resident}"},
                         "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                         "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"}})
    if what.get("type") and what.get("id"):
        entities.append({"what": {"reference": f"{what['type']}/{what['id']}"},
                         "type": {"system": ENTITY_TYPE, "code": "2"},
                         "role": {"system": OBJECT_ROLE, "code": "4",
                                  "display": "Domain Resource"}})
    query = (entry.get("request") or {}).get("query")
    if action in ("search", "history", "audit-read") and query is not None:
        entities.append({"type": {"system": ENTITY_TYPE, "code": "2"},
                         "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
                         "query": base64.b64encode(str(query).encode()).decode()})
    for decision in entry.get("decisions") or []:
        entities.append({"type": {"system": ENTITY_TYPE, "code": "2"},
                         "description": "policy decision",
                         "detail": [{"type": "allow", "valueString": str(decision["allow"])},
                                    {"type": "policy-revision",
                                     "valueString": decision["policy_revision"]},
                                    *({"type": "consent", "valueString": c}
                                      for c in decision.get("consents", [])),
                                    *({"type": "reason", "valueString": r}
                                      for r in decision.get("reasons", []))]})
    if entities:
        event["entity"] = entities
    return event


def _agents(who: dict[str, Any], entry: dict[str, Any], server: str,
            purpose: str | None) -> list[dict[str, Any]]:
    client: dict[str, Any] = {
        "type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]},
        "requestor": False,
        "who": {"display": who.get("subject") or "anonymous"},
    }
    address = entry.get("network_address")
    if address:
        client["network"] = {"address": address, "type": "2"}
    agents = [client, {
        "type": {"coding": [{"system": DCM, "code": "110152",
                             "display": "Destination Role ID"}]},
        "requestor": False, "who": {"display": server},
        "network": {"address": server, "type": "5"}}]
    user: dict[str, Any] = {
        "type": {"coding": [{"system": PARTICIPATION, "code": "IRCP",
                             "display": "information recipient"}]},
        "requestor": True,
        "role": [{"text": who.get("role", "anonymous")}],
    }
    if who.get("organization"):
        user["who"] = {"reference": who["organization"]}
    elif who.get("kind") == "resident":
        user["who"] = {"reference": f"Patient/{who.get('subject')}"}
    else:
        user["who"] = {"display": who.get("subject") or "anonymous"}
    if purpose:
        user["purposeOfUse"] = [{"coding": [{"system": ACT_REASON, "code": purpose}]}]
    agents.append(user)
    return agents

"""Generated decision inputs: varied requesters, consents, periods, nested provisions."""

import random
from typing import Any

PURPOSES = ["TREAT", "ETREAT", "HPAYMT", "CAREMGT", "HRESCH", "HCOMPL", "BOGUS"]
TYPES = ["Patient", "Observation", "Condition", "Encounter", "Claim", "Coverage",
         "ExplanationOfBenefit", "Consent", "Immunization", "Organization", "AuditEvent"]
ORGS = ["Organization/clinic-a", "Organization/clinic-b", "Organization/insurer",
        "Organization/hub", "Organization/office"]
KINDS = ["clinic", "clinic", "insurer", "hub", "compliance"]
NOW = 1_800_000_000
CATEGORIES = [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
               "code": c} for c in ("vital-signs", "laboratory", "social-history")] + [
    {"system": "http://terminology.hl7.org/CodeSystem/condition-category",
     "code": "problem-list-item"}, {"system": "urn:unknown", "code": "x"}]


def _period(rng: random.Random) -> dict[str, int | None]:
    start = rng.choice([None, NOW - 1000, NOW + 1000])
    end = rng.choice([None, None, NOW - 10, NOW + 5000])
    return {"start": start, "end": end}


def _provision(rng: random.Random, depth: int) -> dict[str, Any]:
    return {
        "type": rng.choice(["permit", "permit", "deny"]) if depth == 0 else
        rng.choice(["deny", "permit"]),
        "actors": rng.sample(ORGS, rng.randint(0 if depth else 1, 2)),
        "actor_kinds": rng.sample(["clinic", "insurer", "hub"], rng.randint(0, 1)),
        "labels": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": c} for c in rng.sample(["PSY", "HIV", "SUD"], rng.randint(0, 1))],
        "form": rng.choice(["identified", "identified", "pseudonymized"]),
        "purposes": rng.sample(PURPOSES[:5], rng.randint(0 if depth else 1, 2)),
        "classes": rng.sample(TYPES, rng.randint(0, 2)),
        "categories": rng.sample(CATEGORIES, rng.randint(0, 2) if rng.random() < 0.4 else 0),
        "period": _period(rng),
        "provisions": [_provision(rng, depth + 1) for _ in range(rng.randint(0, 2))]
        if depth == 0 else [],
    }


def generate(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    inputs = []
    for _ in range(n):
        if rng.random() < 0.15:
            requester: dict[str, Any] = {"kind": "resident", "resident": rng.choice(["p1", "p2"]),
                                         "scopes": [], "purpose": None}
        else:
            i = rng.randrange(len(ORGS))
            requester = {
                "kind": "client", "client_id": ORGS[i].split("/")[1], "organization": ORGS[i],
                "organization_kind": KINDS[i], "purpose": rng.choice(PURPOSES),
                "scopes": [{"text": "x", "context": "system",
                            "resource_type": rng.choice(["*", *TYPES]),
                            "interactions": rng.choice(["rs", "cruds", "r", "c"])}
                           for _ in range(rng.randint(0, 2))],
            }
        consents = [{"id": f"Consent/c{j}", "version": str(rng.randint(1, 3)),
                     "status": rng.choice(["active", "active", "inactive"]),
                     "period": _period(rng), "provision": _provision(rng, 0)}
                    for j in range(rng.randint(0, 3))]
        if requester["kind"] == "client" and rng.random() < 0.6:
            # A consent aimed at this requester, so that allows are common too.
            fitting = _provision(rng, 0)
            fitting.update(type="permit", actors=[requester["organization"]],
                           purposes=[requester["purpose"]],
                           period={"start": None, "end": None})
            consents.append({"id": "Consent/fit", "version": "1", "status": "active",
                             "period": {"start": None, "end": None}, "provision": fitting})
            requester["scopes"].append({"text": "x", "context": "system",
                                        "resource_type": "*", "interactions": "cruds"})
        inputs.append({
            "action": rng.choice(["read", "read", "search", "search", "create", "update", "delete",
                                 "derive"]),
            "resource_types": rng.sample(TYPES, rng.randint(1, 3)),
            "requester": requester,
            "resident": rng.choice(["p1", "p1", None]),
            "consents": consents,
            "now": NOW,
            **({"context": {"break_glass_reason": rng.choice(["", "unconscious, allergy check"])}}
               if rng.random() < 0.3 else {}),
        })
    return inputs

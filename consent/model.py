"""FHIR ``Consent`` in and out.

``policy_view`` turns a stored Consent into the plain shape the Rego policies read (see
``policies/exchange/input.schema.json``). It parses; it decides nothing.
"""

from datetime import UTC, datetime, tzinfo
from typing import Any

from exchange.errors import InvalidResource
from exchange.fhir.dates import parse_range

ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_CATEGORY = "http://loinc.org"
ORG_KIND = "urn:exchange:organization-kind"
DISCLOSURE_FORM = "https://fhir.community-exchange.example/StructureDefinition/disclosure-form"
TEMPLATE = "https://fhir.community-exchange.example/StructureDefinition/consent-template"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
TYPE_SYSTEMS = (RESOURCE_TYPES, None)  # a class coding without a system names a type


# R4 (Consent.provision.type): the root rule's action may be left out; the base policy
# then says it. Only the two v3 codes that are exactly "permit" and "deny" are read: any
# other base policy (a URL, OPTINR, OPTOUTE) leaves the rule's action unknown.
BASE_POLICY_TYPES = {"OPTIN": "permit", "OPTOUT": "deny"}


def root_type(resource: dict[str, Any]) -> Any:
    """The action of a Consent's root provision: its own ``type``, else the one its
    ``policyRule`` (OPTIN, OPTOUT of v3 ActCode) means; None when neither says."""
    provision = resource.get("provision")
    if isinstance(provision, dict) and provision.get("type") is not None:
        return provision["type"]
    codings = (resource.get("policyRule") or {}).get("coding") or []
    meant = {BASE_POLICY_TYPES.get(str(c.get("code"))) for c in codings
             if isinstance(c, dict) and c.get("system") == ACT_CODE}
    # Two base policies that disagree say nothing.
    return meant.pop() if len(meant) == 1 else None


def check_consent(resource: dict[str, Any]) -> None:
    """What the exchange needs of a Consent beyond FHIR validity: whose it is, and a rule
    whose every provision says whether it permits or denies."""
    patient = (resource.get("patient") or {}).get("reference", "")
    if not isinstance(patient, str) or not patient.startswith("Patient/"):
        raise InvalidResource("A Consent must name its resident.",
                              expression=["Consent.patient"])
    provision = resource.get("provision")
    if not isinstance(provision, dict) or root_type(resource) not in ("permit", "deny"):
        raise InvalidResource("A Consent must have a provision of type permit or deny, or "
                              "a policyRule of OPTIN or OPTOUT that says which.",
                              expression=["Consent.provision.type"])
    _check_honoured(provision, "Consent.provision")
    _check_nested(provision.get("provision"), "Consent.provision.provision")


# Provision elements the policies do not read. A permit narrowed by one of them (to some
# codes, some records, a period of the data, some actions) would be read as wider than
# the resident wrote: refused, saying which, rather than honoured in part.
UNHONOURED = ("code", "data", "dataPeriod", "action")


def _check_honoured(provision: dict[str, Any], where: str) -> None:
    for element in UNHONOURED:
        if provision.get(element):
            raise InvalidResource(
                f"This exchange cannot honour {where}.{element}: a consent narrowed by it "
                "would be read as wider than written. Narrow it by class or period instead.",
                expression=[f"{where}.{element}"])
    _check_actors(provision.get("actor"), where)


def _check_actors(actors: Any, where: str) -> None:
    # The policies match an actor by its Type/id, as clients are known (Organization/x).
    # An absolute URL, even one naming this exchange, would match no client: a deny for it
    # would deny no one, and a nested deny read as no exception widens the consent.
    for index, actor in enumerate(actors if isinstance(actors, list) else []):
        reference = (actor.get("reference") or {}) if isinstance(actor, dict) else {}
        value = reference.get("reference") if isinstance(reference, dict) else None
        if isinstance(value, str) and "://" in value:
            raise InvalidResource("A Consent names each actor as Type/id (Organization/...) "
                                  "or by identifier, not by an absolute URL.",
                                  expression=[f"{where}.actor[{index}].reference.reference"])


def _check_nested(provisions: Any, where: str) -> None:
    # R4 requires the type of every nested rule; one without it would be read as no
    # exception at all, which for an intended deny would widen the consent.
    for p in provisions or []:
        if not isinstance(p, dict) or p.get("type") not in ("permit", "deny"):
            raise InvalidResource("Every nested provision of a Consent must have a type of "
                                  "permit or deny.", expression=[f"{where}.type"])
        _check_honoured(p, where)
        _check_nested(p.get("provision"), f"{where}.provision")


def policy_view(resource: dict[str, Any], version_id: int,
                zone: tzinfo = UTC) -> dict[str, Any]:
    """The Consent as the policies read it; a period's dates end where the community
    lives (``zone``): a consent "until 31 December" ends at that day's local midnight."""
    return {
        "id": f"Consent/{resource.get('id')}",
        "version": str(version_id),
        "status": resource.get("status"),
        "period": {"start": None, "end": None},
        "provision": {**_provision(resource.get("provision") or {}, zone),
                      "type": root_type(resource)},
    }


def _provision(p: dict[str, Any], zone: tzinfo) -> dict[str, Any]:
    classes = [c for c in p.get("class") or [] if isinstance(c, dict)
               and isinstance(c.get("code"), str) and isinstance(c.get("system", ""), str)]
    actors = [a.get("reference") or {} for a in p.get("actor") or [] if isinstance(a, dict)]
    return {
        "type": p.get("type"),
        "actors": sorted({a["reference"] for a in actors
                          if isinstance(a.get("reference"), str)}),
        # "any clinic": a reference by identifier to a kind of organization
        "actor_kinds": sorted({a["identifier"]["value"] for a in actors
                               if (a.get("identifier") or {}).get("system") == ORG_KIND
                               and isinstance(a["identifier"].get("value"), str)}),
        "labels": sorted(({"system": c.get("system"), "code": c.get("code")}
                          for c in p.get("securityLabel") or [] if isinstance(c, dict)),
                         key=lambda c: (str(c["system"]), str(c["code"]))),
        "form": next((e.get("valueCode") for e in p.get("extension") or []
                      if e.get("url") == DISCLOSURE_FORM), "identified"),
        "purposes": sorted({c.get("code") for c in p.get("purpose") or []
                            if isinstance(c.get("code"), str)}),
        # a class is a whole resource type, or a category within one (its system says which)
        "classes": sorted({c["code"] for c in classes if c.get("system") in TYPE_SYSTEMS}),
        "categories": sorted(({"system": c["system"], "code": c["code"]} for c in classes
                              if c.get("system") not in TYPE_SYSTEMS),
                             key=lambda c: (c["system"], c["code"])),
        "period": _period(p.get("period"), zone),
        "provisions": [_provision(q, zone) for q in p.get("provision") or []
                       if isinstance(q, dict)],
    }


def _period(period: Any, zone: tzinfo = UTC) -> dict[str, int | None]:
    if not isinstance(period, dict):
        return {"start": None, "end": None}
    out: dict[str, int | None] = {"start": None, "end": None}
    try:
        if isinstance(period.get("start"), str):
            out["start"] = int(parse_range(period["start"], zone)[0].timestamp())
        if isinstance(period.get("end"), str):
            out["end"] = int(parse_range(period["end"], zone)[1].timestamp())
    except ValueError:
        # An unreadable period must not widen a consent: it ends before it begins.
        return {"start": 1, "end": 0}
    return out


def build_consent(patient_id: str, organization: str | None, purposes: list[str], *,
                  classes: list[str] | None = None, start: datetime | None = None,
                  end: datetime | None = None, except_classes: list[str] | None = None,
                  status: str = "active", when: datetime | None = None,
                  organization_kind: str | None = None, labels: list[str] | None = None,
                  form: str | None = None, provision_type: str = "permit",
                  template: tuple[str, str] | None = None,
                  categories: list[tuple[str, str]] | None = None,
                  except_categories: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """A resident's consent: to one organization (or any organization of a kind), for
    purposes and, optionally, types or categories (system, code), sensitive labels it
    opens, a form and a period; with nested denies of types or categories."""
    recipient = {"reference": organization} if organization else {
        "type": "Organization", "identifier": {"system": ORG_KIND, "value": organization_kind}}
    provision: dict[str, Any] = {
        "type": provision_type,
        "actor": [{
            "role": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "code": "IRCP"}]},
            "reference": recipient,
        }] if (organization or organization_kind) else [],
        "purpose": [{"system": ACT_REASON, "code": p} for p in purposes],
    }
    if not provision["actor"]:
        del provision["actor"]
    if classes or categories:
        provision["class"] = [{"system": RESOURCE_TYPES, "code": c} for c in classes or []] \
            + [{"system": s, "code": c} for s, c in categories or []]
    if labels:
        provision["securityLabel"] = [{"system": ACT_CODE, "code": c} for c in labels]
    if form:
        provision["extension"] = [{"url": DISCLOSURE_FORM, "valueCode": form}]
    if start or end:
        provision["period"] = {k: v.astimezone(UTC).isoformat().replace("+00:00", "Z")
                               for k, v in (("start", start), ("end", end)) if v}
    if except_classes or except_categories:
        provision["provision"] = [{
            "type": "deny",
            "class": [{"system": RESOURCE_TYPES, "code": c} for c in except_classes or []]
            + [{"system": s, "code": c} for s, c in except_categories or []],
        }]
    consent: dict[str, Any] = {
        "resourceType": "Consent",
        "status": status,
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": CONSENT_CATEGORY, "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": (when or datetime.now(UTC)).astimezone(UTC).isoformat()
        .replace("+00:00", "Z"),
        "policyRule": {"coding": [{"system": ACT_REASON,
                                   "code": "OPTIN" if provision_type == "permit"
                                   else "OPTOUT"}]},
        "provision": provision,
    }
    if template:
        consent["extension"] = [{"url": TEMPLATE, "valueString": f"{template[0]}|{template[1]}"}]
    return consent

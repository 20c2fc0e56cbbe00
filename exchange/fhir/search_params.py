"""The search parameters the exchange supports, and where their values live.

Paths are a small documented syntax: dot-separated element names evaluated over the stored
JSON, stepping into every item of a list. Choice elements are listed per concrete type
(``effectiveDateTime``, ``effectivePeriod``).
"""

from dataclasses import dataclass
from typing import Literal

Kind = Literal["token", "string", "date", "reference"]


@dataclass(frozen=True)
class SearchParam:
    name: str
    kind: Kind
    paths: tuple[str, ...]
    targets: tuple[str, ...] = ()  # for references: the resource types they point at


def _p(name: str, kind: Kind, *paths: str, targets: tuple[str, ...] = ()) -> SearchParam:
    return SearchParam(name, kind, paths, targets)


_PATIENT = ("Patient",)
_SUBJECT = (_p("patient", "reference", "subject", targets=_PATIENT),
            _p("subject", "reference", "subject", targets=_PATIENT))

PARAMS: dict[str, dict[str, SearchParam]] = {
    rtype: {p.name: p for p in params}
    for rtype, params in {
        "Patient": (
            _p("identifier", "token", "identifier"),
            _p("name", "string", "name.family", "name.given", "name.text"),
            _p("family", "string", "name.family"),
            _p("given", "string", "name.given"),
            _p("birthdate", "date", "birthDate"),
            _p("gender", "token", "gender"),
            _p("phone", "token", "telecom"),
            _p("active", "token", "active"),
            _p("organization", "reference", "managingOrganization",
               targets=("Organization",)),
        ),
        "Observation": (
            *_SUBJECT,
            _p("identifier", "token", "identifier"),
            _p("code", "token", "code"),
            _p("category", "token", "category"),
            _p("status", "token", "status"),
            _p("date", "date", "effectiveDateTime", "effectivePeriod", "effectiveInstant"),
            _p("encounter", "reference", "encounter", targets=("Encounter",)),
        ),
        "Condition": (
            *_SUBJECT,
            _p("code", "token", "code"),
            _p("category", "token", "category"),
            _p("clinical-status", "token", "clinicalStatus"),
            _p("onset-date", "date", "onsetDateTime", "onsetPeriod"),
            _p("recorded-date", "date", "recordedDate"),
            _p("encounter", "reference", "encounter", targets=("Encounter",)),
        ),
        "Encounter": (
            *_SUBJECT,
            _p("status", "token", "status"),
            _p("class", "token", "class"),
            _p("type", "token", "type"),
            _p("date", "date", "period"),
            _p("service-provider", "reference", "serviceProvider", targets=("Organization",)),
        ),
        "MedicationRequest": (
            *_SUBJECT,
            _p("status", "token", "status"),
            _p("category", "token", "category"),
            _p("code", "token", "medicationCodeableConcept"),
            _p("authoredon", "date", "authoredOn"),
            _p("encounter", "reference", "encounter", targets=("Encounter",)),
        ),
        "MedicationStatement": (
            *_SUBJECT,
            _p("status", "token", "status"),
            _p("code", "token", "medicationCodeableConcept"),
            _p("effective", "date", "effectiveDateTime", "effectivePeriod"),
        ),
        "Immunization": (
            _p("patient", "reference", "patient", targets=_PATIENT),
            _p("status", "token", "status"),
            _p("vaccine-code", "token", "vaccineCode"),
            _p("date", "date", "occurrenceDateTime"),
        ),
        "Coverage": (
            _p("patient", "reference", "beneficiary", targets=_PATIENT),
            _p("beneficiary", "reference", "beneficiary", targets=_PATIENT),
            _p("status", "token", "status"),
            _p("type", "token", "type"),
            _p("payor", "reference", "payor", targets=("Organization",)),
        ),
        "Claim": (
            _p("patient", "reference", "patient", targets=_PATIENT),
            _p("status", "token", "status"),
            _p("use", "token", "use"),
            _p("created", "date", "created"),
            _p("encounter", "reference", "item.encounter", targets=("Encounter",)),
            _p("insurer", "reference", "insurer", targets=("Organization",)),
        ),
        "ExplanationOfBenefit": (
            _p("patient", "reference", "patient", targets=_PATIENT),
            _p("status", "token", "status"),
            _p("created", "date", "created"),
            _p("claim", "reference", "claim", targets=("Claim",)),
        ),
        "Consent": (
            _p("patient", "reference", "patient", targets=_PATIENT),
            _p("status", "token", "status"),
            _p("category", "token", "category"),
            _p("date", "date", "dateTime"),
            _p("actor", "reference", "provision.actor.reference",
               targets=("Organization",)),
            _p("purpose", "token", "provision.purpose"),
        ),
        "RelatedPerson": (
            _p("patient", "reference", "patient", targets=_PATIENT),
            _p("active", "token", "active"),
        ),
        "Organization": (
            _p("identifier", "token", "identifier"),
            _p("name", "string", "name"),
            _p("type", "token", "type"),
        ),
    }.items()
}

# The element that puts a resource in a resident's record (the Patient compartment).
COMPARTMENT: dict[str, str | None] = {
    "Patient": None,  # a Patient is its own compartment
    "Observation": "subject",
    "Condition": "subject",
    "Encounter": "subject",
    "MedicationRequest": "subject",
    "MedicationStatement": "subject",
    "Immunization": "patient",
    "Coverage": "beneficiary",
    "Claim": "patient",
    "ExplanationOfBenefit": "patient",
    "Consent": "patient",
    "RelatedPerson": "patient",
}

# Resources that belong to no resident: the community's directory.
DIRECTORY_TYPES = frozenset({"Organization"})

SUPPORTED_TYPES = frozenset(PARAMS)
RESIDENT_TYPES = frozenset(COMPARTMENT)

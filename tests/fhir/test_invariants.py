"""The safety invariants, one by one: references, quantities, periods."""

import pytest

from exchange.errors import BrokenInvariant
from exchange.fhir.conformance import check_conformance
from exchange.fhir.invariants import period_violation, quantity_violation, reference_violation
from exchange.fhir.references import LocalBases

TYPES = {"Patient", "Observation", "Organization"}
HERE = LocalBases.of("https://fhir.example.org/r4", ["http://old.example.org/fhir/"])


@pytest.mark.parametrize("reference", [
    "Patient/p-1", "Patient/p-1/_history/2", "https://fhir.example.org/r4/Patient/7",
    "http://example.org/anything", "urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7",
    "urn:oid:1.2.840.113619.2.62", "#med", "#",
])
def test_well_formed_references_hold(reference: str) -> None:
    assert reference_violation({"reference": reference}, TYPES, {"med"}, HERE) is None


@pytest.mark.parametrize("reference", [
    "https://fhir.example.org/r4/Patient/7", "https://FHIR.Example.org/r4/Patient/7",
    "http://old.example.org/fhir/Patient/7/_history/1",
    "http://example.org/not/a/record",  # not a RESTful URL: names no record anywhere
])
def test_references_under_this_exchanges_bases_hold(reference: str) -> None:
    assert reference_violation({"reference": reference}, TYPES, (), HERE) is None


@pytest.mark.parametrize("reference", [
    "http://other.example/fhir/Patient/alice", "https://fhir.example.org/r5/Patient/7",
    "https://fhir.example.org/Patient/7", "http://old.example.org/fhir/x/Observation/o",
])
def test_a_reference_to_another_server_is_refused(reference: str) -> None:
    found = reference_violation({"reference": reference}, TYPES, (), HERE)
    assert found is not None and found[0] == "reference"
    assert "another server" in found[1] and reference not in found[1]


@pytest.mark.parametrize("reference", [
    "Patient", "Patient/", "patient/p-1", "Nosuchtype/p-1", "Patient/p 1",
    "Patient/" + "x" * 65, "urn:uuid:enc-1", "urn:oid:9.1", "#other", "ftp://x/y", " Patient/p",
])
def test_malformed_references_are_refused(reference: str) -> None:
    found = reference_violation({"reference": reference}, TYPES, {"med"})
    assert found is not None and found[0] == "reference"
    assert reference not in found[1]  # the message never quotes the value


def test_a_reference_without_a_literal_is_not_judged() -> None:
    assert reference_violation({"identifier": {"value": "x"}}, TYPES, ()) is None
    assert reference_violation({"display": "Dr. Nobody"}, TYPES, ()) is None


@pytest.mark.parametrize("quantity, element", [
    ({"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}, None),
    ({"value": 3}, None),
    ({"_value": {"extension": []}, "unit": "mg"}, None),  # a value absent for a stated reason
    ({"comparator": "<", "unit": "mg"}, "value"),
    ({"unit": "mg"}, "value"),
    ({"code": "mg", "system": "http://unitsofmeasure.org"}, "value"),
    ({"value": 5, "code": "mg"}, "system"),
])
def test_a_quantity_says_its_value(quantity: dict, element: str | None) -> None:
    found = quantity_violation(quantity)
    assert (found[0] if found else None) == element


@pytest.mark.parametrize("start, end, holds", [
    ("2025-01-01", "2025-01-02", True),
    ("2025-01-01T10:00:00Z", "2025-01-01T10:00:00Z", True),  # an instant long
    ("2025-01", "2025-01-15", True),  # precisions overlap
    ("2025-01-02", "2025-01-01T20:00:00-08:00", True),  # the date's zone is unknown
    ("2025-01-02", "2025-01-01", False),
    ("2025-01-01T10:00:01Z", "2025-01-01T10:00:00Z", False),
    ("2025-01-01T10:00:00+01:00", "2025-01-01T09:30:00Z", True),  # zones compared as instants
    ("2026", "2025-12-31", False),
])
def test_a_period_does_not_end_before_it_starts(start: str, end: str, holds: bool) -> None:
    assert (period_violation({"start": start, "end": end}) is None) is holds
    assert period_violation({"start": start}) is None
    assert period_violation({"end": end}) is None


def test_invariants_hold_wherever_their_type_appears() -> None:
    """In a choice element, a backbone element, a data type and an extension alike."""
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "subject": {"reference": "Patient/p"}}
    cases = {
        "Observation.valueQuantity.value": {"valueQuantity": {"unit": "mg"}},
        "Observation.component[0].valuePeriod.start": {"component": [{
            "code": {"text": "x"}, "valuePeriod": {"start": "2025-02-01", "end": "2025-01-01"}}]},
        "Observation.identifier[0].assigner.reference": {"identifier": [{
            "assigner": {"reference": "Organization"}}]},
        "Observation.code.extension[0].valueReference.reference": {"code": {
            "text": "x", "extension": [{"url": "http://example.org/e",
                                        "valueReference": {"reference": "not a reference"}}]}},
        "Observation.contained[0].managingOrganization.reference": {"contained": [{
            "resourceType": "Patient", "id": "c", "managingOrganization": {"reference": "#x"}}]},
    }
    for expression, change in cases.items():
        with pytest.raises(BrokenInvariant) as caught:
            check_conformance({**obs, **change})
        assert caught.value.expression == [expression]
        assert caught.value.status == 400


def test_a_contained_resource_may_point_at_its_sibling() -> None:
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "contained": [{"resourceType": "Patient", "id": "p"},
                         {"resourceType": "Patient", "id": "q", "link": [
                             {"other": {"reference": "#p"}, "type": "seealso"}]}],
           "subject": {"reference": "#q"}}
    check_conformance(obs)

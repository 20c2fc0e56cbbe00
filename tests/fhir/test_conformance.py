"""Required bindings: the generated data holds the ones the specification names, and the walk
finds a wrong code wherever the element sits (arrays, backbone elements, recursive items,
data types, contained resources) and names exactly that element."""

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.errors import InvalidCode, InvalidResource
from exchange.fhir.conformance import check_conformance
from exchange.fhir.element_tree import element_tree
from exchange.fhir.validation import validate_resource

TREE = element_tree()
BINDINGS = {b.path: b for node in TREE.roots.values() for e in node.elements.values()
            if (b := e.binding) is not None}


def test_the_data_says_where_it_comes_from() -> None:
    provenance = TREE.provenance
    assert provenance["package"] == "hl7.fhir.r4.examples"
    assert provenance["version"] == provenance["fhirVersion"] == "4.0.1"
    assert provenance["integrity"].startswith("sha512-")
    assert provenance["generator"] == "exchange.fhir.spec.bindings_generation"


@pytest.mark.parametrize("path, value_set, code", [
    ("Observation.status", "http://hl7.org/fhir/ValueSet/observation-status", "final"),
    # R4 made these required (R5 too); Condition.category is only extensible.
    ("Condition.clinicalStatus", "http://hl7.org/fhir/ValueSet/condition-clinical", "active"),
    ("Condition.verificationStatus", "http://hl7.org/fhir/ValueSet/condition-ver-status",
     "confirmed"),
    ("AllergyIntolerance.clinicalStatus",
     "http://hl7.org/fhir/ValueSet/allergyintolerance-clinical", "resolved"),
    ("Patient.gender", "http://hl7.org/fhir/ValueSet/administrative-gender", "female"),
    ("Encounter.status", "http://hl7.org/fhir/ValueSet/encounter-status", "finished"),
    ("Consent.status", "http://hl7.org/fhir/ValueSet/consent-state-codes", "active"),
    ("MedicationRequest.intent", "http://hl7.org/fhir/ValueSet/medicationrequest-intent",
     "order"),
])
def test_well_known_required_bindings_are_generated(path: str, value_set: str,
                                                    code: str) -> None:
    binding = BINDINGS[path]
    assert binding.value_set == value_set
    assert code in binding.codes


def test_only_required_bindings_are_kept() -> None:
    for preferred_or_extensible in ("Condition.category", "Observation.category",
                                    "Observation.interpretation", "Patient.maritalStatus"):
        assert preferred_or_extensible not in BINDINGS


def test_what_needs_an_external_terminology_is_listed_not_guessed() -> None:
    assert "urn:iso:std:iso:4217" in TREE.not_checkable["Money.currency"]
    assert "urn:ietf:bcp:13" in TREE.not_checkable["Attachment.contentType"]
    money = {"resourceType": "Claim", "status": "active", "total": {"value": 1,
                                                                    "currency": "XXX"}}
    check_conformance(money)  # not checkable, so not refused


def _observation(**changes: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
            **changes}


def test_an_invalid_code_is_named_and_not_echoed() -> None:
    with pytest.raises(InvalidCode) as caught:
        validate_resource(_observation(status="zhang-san-1957"))
    assert caught.value.status == 400
    assert caught.value.expression == ["Observation.status"]
    assert "zhang-san-1957" not in caught.value.message
    assert "observation-status" in caught.value.message


def test_a_bundle_entry_prefix_is_kept() -> None:
    with pytest.raises(InvalidCode) as caught:
        validate_resource(_observation(status="done"), where="Bundle.entry[3].resource")
    assert caught.value.expression == ["Bundle.entry[3].resource.status"]


def test_shape_errors_stay_422_and_come_first() -> None:
    with pytest.raises(InvalidResource) as caught:
        validate_resource(_observation(status={"not": "a code"}))
    assert type(caught.value) is InvalidResource and caught.value.status == 422


def _condition(**status: Any) -> dict[str, Any]:
    return {"resourceType": "Condition", "subject": {"reference": "Patient/p"}, **status}


CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"


@pytest.mark.parametrize("concept, expression", [
    ({"coding": [{"system": CLINICAL, "code": "active"}]}, None),
    ({"text": "active"}, None),  # text alone claims no code
    ({"coding": [{"system": CLINICAL, "code": "active"},
                 {"system": "http://snomed.info/sct", "code": "55561003"}]}, None),
    ({"coding": [{"system": CLINICAL, "code": "cured"}]},
     "Condition.clinicalStatus.coding[0].code"),
    ({"coding": [{"system": "http://snomed.info/sct", "code": "55561003"}]},
     "Condition.clinicalStatus.coding"),  # a translation without the code itself
])
def test_codeable_concepts_need_a_coding_from_the_value_set(
        concept: dict[str, Any], expression: str | None) -> None:
    resource = _condition(clinicalStatus=concept)
    if expression is None:
        check_conformance(resource)
        return
    with pytest.raises(InvalidCode) as caught:
        check_conformance(resource)
    assert caught.value.expression == [expression]


# --- the walk, property-based: plant one wrong code anywhere and it is found there ---

Planted = tuple[dict[str, Any], list[tuple[str, list[Any]]]]  # resource, (path, holder)

_names = st.lists(st.fixed_dictionaries({}, optional={
    "use": st.sampled_from(["usual", "official", "old"]),
    "family": st.text(max_size=5),
    "period": st.just({"start": "2020-01-01", "end": "2021-01-01"})}), max_size=3)
_telecoms = st.lists(st.fixed_dictionaries({}, optional={
    "system": st.sampled_from(["phone", "email", "sms"]),
    "use": st.sampled_from(["home", "work", "mobile"])}), max_size=3)


@st.composite
def patients(draw: st.DrawFn) -> dict[str, Any]:
    contacts = draw(st.lists(st.fixed_dictionaries(
        {"name": st.fixed_dictionaries({}, optional={"use": st.just("nickname")})},
        optional={"telecom": _telecoms, "gender": st.just("other")}), max_size=2))
    patient = {"resourceType": "Patient", "name": draw(_names), "telecom": draw(_telecoms),
               "contact": contacts, "gender": draw(st.sampled_from(["male", "unknown"]))}
    if draw(st.booleans()):
        patient["contained"] = [{"resourceType": "Patient", "id": "c", "name": draw(_names)}]
    return patient


def _items(depth: int) -> st.SearchStrategy[list[dict[str, Any]]]:
    item = st.fixed_dictionaries({"linkId": st.just("q"), "type": st.sampled_from(
        ["group", "string", "choice", "display"])})
    if depth:
        item = st.fixed_dictionaries({"linkId": st.just("q"), "type": st.just("group"),
                                      "item": _items(depth - 1)})
    return st.lists(item, max_size=3)


_ITEMS = st.one_of([_items(depth) for depth in range(4)])
questionnaires = st.builds(lambda items: {"resourceType": "Questionnaire", "status": "active",
                                          "item": items}, _ITEMS)


def code_positions(node: Any, path: str, keys: frozenset[str]) -> list[tuple[str, Any, str]]:
    """(path, holder, key) of every bound code the strategies above can plant, found by a
    plain walk of the JSON: an oracle that knows nothing of the element tree."""
    found: list[tuple[str, Any, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in keys and isinstance(value, str):
                found.append((f"{path}.{key}", node, key))
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    found += code_positions(item, f"{path}.{key}[{index}]", keys)
            else:
                found += code_positions(value, f"{path}.{key}", keys)
    return found


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(patients(), questionnaires), st.data())
def test_a_planted_wrong_code_is_found_exactly_where_it_is(resource: dict[str, Any],
                                                          data: st.DataObject) -> None:
    check_conformance(resource)  # every code the strategies draw is valid
    keys = frozenset({"use", "system", "gender", "type", "status"})
    positions = code_positions(resource, resource["resourceType"], keys)
    if not positions:
        return
    path, holder, key = data.draw(st.sampled_from(positions))
    planted = copy.deepcopy(resource)
    holder_copy = _follow(planted, path)
    holder_copy[key] = "not-a-code"
    with pytest.raises(InvalidCode) as caught:
        check_conformance(planted)
    assert caught.value.expression == [path]
    assert holder is not holder_copy


def _follow(resource: dict[str, Any], path: str) -> dict[str, Any]:
    node: Any = resource
    for step in path.split(".")[1:-1]:
        name, _, index = step.partition("[")
        node = node[name]
        if index:
            node = node[int(index[:-1])]
    return node


@given(st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k != "resourceType"),
                       st.one_of(st.integers(), st.text(max_size=4), st.none()), max_size=5))
def test_elements_the_specification_does_not_know_are_left_to_the_model(
        extra: dict[str, Any]) -> None:
    check_conformance({**_observation(), **extra, "status": "final"})

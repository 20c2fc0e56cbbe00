"""Search parameters come from HL7's definitions: the committed file is what the generator
makes from the package, and each parameter compiled into plain steps finds exactly what
its FHIRPath expression finds, on every one of HL7's examples of a stored type."""

import json
import re
from pathlib import Path

from exchange.fhir.fhirpath import evaluate
from exchange.fhir.search_params import PARAMS, SPEC, SUPPORTED_TYPES
from exchange.fhir.spec.search_generation import generate
from exchange.store.indexing import extension_value, param_values
from tests.hl7_package import resources


def _canonical(values: list) -> list[str]:
    # fhirpathpy gives decimals as Decimal, the stored JSON as float: compare as JSON text
    return sorted({json.dumps(v, sort_keys=True, default=float) for v in values})  # a union


def _without_resolve(expression: str) -> str:
    """``resolve() is Patient`` needs the referenced resource, which a FHIRPath engine
    without a server cannot fetch (it finds nothing); the reference's type is what the
    indexer checks, so the comparison checks that too. And ``x as T`` is strictly an error
    on a list of several ``x``; HL7 means ``ofType(T)``, which the indexer does."""
    expression = re.sub(r"resolve\(\) is ([A-Za-z]+)", r"reference.contains('\1/')",
                        expression)
    return re.sub(r"\s+as\s+([A-Za-z]+)", r".ofType(\1)", expression)


def test_the_committed_file_is_the_generators_output(hl7_examples: Path) -> None:
    assert generate(hl7_examples) == json.loads(SPEC.read_text())


def test_compiled_steps_find_what_the_expressions_find(hl7_examples: Path) -> None:
    examples = [r for _, r in resources(hl7_examples) if r["resourceType"] in SUPPORTED_TYPES]
    assert len(examples) > 400
    compared = 0
    for resource in examples:
        for param in PARAMS[resource["resourceType"]].values():
            if not param.steps:
                continue
            expression = param.expression.replace("Resource.", resource["resourceType"] + ".")
            expected = evaluate(resource, _without_resolve(expression))
            if ".extension(" in expression:  # HL7 means the extension's value
                expected = [extension_value(v) for v in expected]
            assert _canonical(list(param_values(resource, param))) == _canonical(expected), (
                resource["resourceType"], resource.get("id"), param.name)
            compared += bool(expected)
    assert compared > 2000  # values were found, not just agreed to be absent


def test_every_stored_type_has_parameters_and_a_place() -> None:
    from exchange.fhir.search_params import COMPARTMENT, DIRECTORY_TYPES, RESIDENT_TYPES

    assert {"AllergyIntolerance", "Procedure", "DiagnosticReport", "DocumentReference",
            "CarePlan", "CareTeam", "Goal", "QuestionnaireResponse", "MedicationDispense",
            "MedicationAdministration", "ServiceRequest", "Appointment", "Provenance",
            "Claim", "Coverage"} <= RESIDENT_TYPES
    assert {"Practitioner", "Location", "Organization", "HealthcareService"} <= DIRECTORY_TYPES
    for rtype in RESIDENT_TYPES - {"Patient"}:
        assert COMPARTMENT[rtype], rtype
    # A Coverage belongs to its beneficiary, not to the policy holder who pays for it.
    assert COMPARTMENT["Coverage"][0].name == "beneficiary"


def test_a_parameter_made_of_others_is_searched_under_theirs_and_not_indexed_twice() -> None:
    from exchange.privacy.blind_index import BlindIndex
    from exchange.store.indexing import index_entries

    combo = PARAMS["Observation"]["combo-code"]
    assert combo.index_keys == ("code", "component-code")
    assert PARAMS["Observation"]["code"].index_keys == ("code",)
    # every part's values are the combination's, and nothing else is
    for rtype, params in PARAMS.items():
        for param in params.values():
            if param.parts:
                steps = set().union(*(params[p].steps for p in param.parts))
                assert steps == set(param.steps), (rtype, param.name)
    bp = {"resourceType": "Observation", "status": "final",
          "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
          "component": [{"code": {"coding": [{"system": "http://loinc.org",
                                              "code": "8480-6"}]}}]}
    keys = {key for key, _ in index_entries(bp, BlindIndex(b"k" * 32)).terms}
    assert {"code", "component-code"} <= keys
    assert not any(k.startswith("combo-code") for k in keys)

"""Subsumption without a terminology server (``exchange.fhir.subsumption``): HL7's own is-a
CodeSystems from the generated file, ICD-10 by its code's structure, and a 400 for every
system whose hierarchy the exchange does not know."""

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.errors import InvalidSearch, UnsupportedSearch
from exchange.fhir import subsumption
from exchange.fhir.search import parse_search
from exchange.fhir.spec import hierarchy_generation
from exchange.fhir.subsumption import (
    ICD10,
    NoHierarchy,
    icd10_ancestors,
    icd10_form,
    is_icd10,
    placed_terms,
    subsumed,
)
from exchange.privacy.disclosure import searchable
from exchange.privacy.profiles import load_profiles

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
POLICY_DATA = Path(__file__).parents[2] / "policies/exchange/static/data.json"


# -- the generated file ----------------------------------------------------------------------


def test_the_data_says_where_it_comes_from_and_stays_small() -> None:
    provenance = subsumption.provenance()
    assert provenance["package"] == "hl7.fhir.r4.examples"
    assert provenance["version"] == "4.0.1"
    assert provenance["generator"] == "exchange.fhir.spec.hierarchy_generation"
    assert provenance["integrity"].startswith("sha512-")
    assert hierarchy_generation.OUTPUT.stat().st_size < 120_000


def test_the_generated_data_is_what_the_generator_makes(hl7_examples: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "code_hierarchies.json"
    hierarchy_generation.main([str(hl7_examples), "--output", str(out)])
    assert out.read_bytes() == hierarchy_generation.OUTPUT.read_bytes(), \
        "regenerate with python -m exchange.fhir.spec.hierarchy_generation"


def test_only_is_a_hierarchies_of_more_than_one_level_are_kept() -> None:
    systems = json.loads(hierarchy_generation.OUTPUT.read_bytes())["systems"]
    assert ACT_CODE in systems
    # nested, but of no declared meaning: no subsumption can be read from it
    assert "http://terminology.hl7.org/CodeSystem/condition-clinical" not in systems
    assert all(children for system in systems.values() for children in system.values())
    # one spelling per system, so a lookup by the canonical spelling is unambiguous
    assert len(subsumption.hierarchies()) == len(systems)


def test_hierarchy_of_reads_nesting_and_child_and_parent_properties() -> None:
    system = {"hierarchyMeaning": "is-a", "concept": [
        {"code": "a", "concept": [{"code": "b", "property": [
            {"code": "child", "valueCode": "d"}]}]},
        {"code": "c", "property": [{"code": "subsumedBy", "valueCode": "a"}]},
        {"code": "d"}]}
    assert hierarchy_generation.hierarchy_of(system) == {"a": ["b", "c"], "b": ["d"]}
    assert hierarchy_generation.hierarchy_of({**system, "hierarchyMeaning": "part-of"}) == {}
    assert hierarchy_generation.hierarchy_of({k: v for k, v in system.items()
                                              if k != "hierarchyMeaning"}) == {}


def test_an_hl7_code_expands_into_its_descendants_or_its_ancestors() -> None:
    def codes(modifier: str, code: str, system: str = ACT_CODE) -> set[str]:
        return {t.split("|", 1)[1] for t in subsumed(modifier, system, code).own}

    assert codes("below", "IMP") == {"IMP", "ACUTE", "NONAC"}
    assert codes("above", "ACUTE") == {"ACUTE", "IMP", "_ActEncounterCode",
                                       "_ActCareProvisionCode"}
    assert {"AMB", "EMER", "HH", "IMP", "ACUTE"} <= codes("below", "_ActEncounterCode")
    # a v3 code of two parents is below both (LFEMX: nested under one, a child of COVMX)
    assert "LFEMX" in codes("below", "COVMX")
    # the system however spelled; the term in HL7's own spelling
    assert subsumed("below", "HTTPS://terminology.hl7.org/CodeSystem/v3-ActCode/",
                    "IMP").own[0] == f"{ACT_CODE}|IMP"
    # a code the system does not have is only itself
    assert codes("below", "NOT-A-CODE") == {"NOT-A-CODE"}


# -- ICD-10 ----------------------------------------------------------------------------------


def test_the_icd10_rule_on_known_codes() -> None:
    assert icd10_form("F32.9") == icd10_form("F329") == icd10_form("f32.9") == "F32.9"
    assert icd10_form("A17.0+") == "A17.0" and icd10_form("G01*") == "G01"
    assert icd10_ancestors("F32.9") == ["F32"]
    assert icd10_ancestors("F32") == []
    assert icd10_ancestors("S72.001A") == ["S72", "S72.0", "S72.00", "S72.001"]
    for outside in ("F30-F39", "F", "F3", "F3.29", "F32.", "32.9", "F32.12345", "V01-X59"):
        assert icd10_form(outside) is None, outside


def test_icd10_names_are_the_labelling_policys() -> None:
    data = json.loads(POLICY_DATA.read_text())
    aliases = [name for name, system in data["code_system_aliases"].items() if system == ICD10]
    assert aliases and all(is_icd10(name) for name in aliases)
    pattern = next(p for p in data["code_system_patterns"] if p["system"] == ICD10)
    for name in ("http://fhir.de/codesystem/bfarm/icd-10-gm", "http://hl7.org/fhir/sid/icd-10-who",
                 "http://example.org/icd10-ca", "http://hl7.org/fhir/sid/icd-10-pcs",
                 "http://loinc.org", "http://snomed.info/sct"):
        policy = bool(re.match(pattern["pattern"], name)) and not re.search(
            pattern["except"], name)
        assert is_icd10(name) == (policy or name == ICD10), name
    assert is_icd10("HTTPS://www.HL7.org/fhir/sid/ICD-10-CM/ ")


_CATEGORY = st.from_regex(r"[A-Z][0-9][0-9A-Z]", fullmatch=True)
_TAIL = st.from_regex(r"[0-9A-Z]{0,4}", fullmatch=True)


def _code(category: str, tail: str) -> str:
    return category + ("." + tail if tail else "")


@given(_CATEGORY, _TAIL, st.one_of(st.none(), _CATEGORY), _TAIL)
def test_icd10_below_is_exactly_a_dotted_prefix(category: str, tail: str,
                                                 other_category: str | None,
                                                 other: str) -> None:
    """``:below A`` finds a code C, and ``:above C`` finds A, exactly when A is C or one of
    C's prefixes of three characters or more: asked of the index's own terms."""
    code = _code(category, tail)
    asked = _code(other_category or category, other)
    index = set(placed_terms(ICD10, code))
    # as many terms whatever the depth: a count of rows tells none
    assert len(index) == subsumption.PLACES
    plain_code, plain_asked = code.replace(".", ""), asked.replace(".", "")
    expected = plain_code.startswith(plain_asked)
    assert bool(index & set(subsumed("below", ICD10, asked).placed)) == expected
    assert bool(set(placed_terms(ICD10, asked)) & set(subsumed("above", ICD10, code).placed)) \
        == expected
    # every ancestor is itself a code of the form, and above all the codes below it
    for ancestor in icd10_ancestors(code):
        assert icd10_form(ancestor) == ancestor
        assert set(icd10_ancestors(ancestor)) < set(icd10_ancestors(code))


@given(_CATEGORY, _TAIL, st.sampled_from(["http://hl7.org/fhir/sid/icd-10-cm",
                                          "urn:oid:2.16.840.1.113883.6.3",
                                          "https://hl7.org/fhir/sid/icd-10/"]))
def test_icd10_editions_and_spellings_are_placed_alike(category: str, tail: str,
                                                       system: str) -> None:
    code = _code(category, tail)
    assert placed_terms(system, code.lower()) == placed_terms(ICD10, code) \
        == placed_terms(ICD10, code.replace(".", ""))


# -- what is refused -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["http://loinc.org|15074-8", "http://snomed.info/sct|35489007",
                                   "urn:example:local|x", ACT_CODE.replace("ActCode", "Nope")
                                   + "|x", f"{ICD10}|F30-F39"])
@pytest.mark.parametrize("modifier", ["below", "above"])
def test_an_unknown_hierarchy_is_refused_naming_the_parameter(value: str,
                                                              modifier: str) -> None:
    with pytest.raises(UnsupportedSearch) as refused:
        parse_search("Condition", [(f"code:{modifier}", value)])
    assert f"code:{modifier}" in str(refused.value)
    assert "15074" not in str(refused.value) and "F30" not in str(refused.value)
    with pytest.raises(NoHierarchy):
        subsumed(modifier, *value.split("|"))


@pytest.mark.parametrize("value", ["F32", "|F32", f"{ICD10}|"])
def test_subsumption_needs_a_system_and_a_code(value: str) -> None:
    with pytest.raises(InvalidSearch, match="system"):
        parse_search("Condition", [("code:below", value)])


def test_an_expansion_is_bounded_like_the_values_of_a_query() -> None:
    with pytest.raises(InvalidSearch, match="narrower"):
        parse_search("Observation", [("_security:below", f"{ACT_CODE}|_ActCareProvisionCode")])
    query = parse_search("Encounter", [("class:below", f"{ACT_CODE}|IMP")])
    assert query.clauses[0].modifier == "below"


def test_a_profile_judges_subsumption_as_the_plain_code_search() -> None:
    profiles = load_profiles(Path(__file__).parents[2] / "policies/exchange/profiles")
    pseudonymized, care_needs = profiles["pseudonymized"], profiles["care-needs"]
    for modifier in ("", ":below", ":above"):
        query = parse_search("Condition", [(f"code{modifier}", f"{ICD10}|F32")])
        assert searchable(query, pseudonymized)
        assert not searchable(query, care_needs)  # it hides codes: refused either way
    # a uri's path prefixes are no coded value: not under a restricting profile
    uri = parse_search("Condition", [("_profile:below", "http://example.org/fhir")])
    assert not searchable(uri, pseudonymized)

"""Value-set expansion from a package's own CodeSystems, on a synthetic package, so it is
tested even where HL7's package cannot be fetched."""

import pytest

from exchange.fhir.spec.bindings_generation import generate, structures_of
from exchange.fhir.spec.expansion import Expander, NotExpandable, canonical

CS = "http://example.org/cs/colour"
CODE_SYSTEMS = {CS: {"url": CS, "content": "complete", "concept": [
    {"code": "red", "concept": [{"code": "crimson"}]}, {"code": "blue"}]},
    "http://example.org/cs/partial": {"content": "fragment", "concept": [{"code": "x"}]}}


def _vs(url: str, *includes: dict, exclude: list | None = None) -> dict:
    compose: dict = {"include": list(includes)}
    if exclude:
        compose["exclude"] = exclude
    return {"resourceType": "ValueSet", "url": url, "compose": compose}


VALUE_SETS = {v["url"]: v for v in [
    _vs("vs:whole", {"system": CS}),
    _vs("vs:listed", {"system": "http://loinc.org", "concept": [{"code": "LA1-1"}]}),
    _vs("vs:both", {"valueSet": ["vs:whole"]}, {"valueSet": ["vs:listed"]}),
    _vs("vs:without-blue", {"system": CS}, exclude=[{"system": CS, "concept": [{"code": "blue"}]}]),
    _vs("vs:filter", {"system": CS, "filter": [{"property": "concept", "op": "is-a",
                                                "value": "red"}]}),
    _vs("vs:external", {"system": "urn:ietf:bcp:13"}),
    _vs("vs:fragment", {"system": "http://example.org/cs/partial"}),
    _vs("vs:loop", {"valueSet": ["vs:loop"]}),
]}
EXPANDER = Expander(VALUE_SETS, CODE_SYSTEMS)


def test_whole_code_systems_include_their_children() -> None:
    assert EXPANDER.expand("vs:whole|4.0.1") == {CS: {"red", "crimson", "blue"}}


def test_listed_concepts_need_no_code_system() -> None:
    assert EXPANDER.expand("vs:listed") == {"http://loinc.org": {"LA1-1"}}


def test_imports_and_excludes() -> None:
    assert EXPANDER.expand("vs:both") == {CS: {"red", "crimson", "blue"},
                                          "http://loinc.org": {"LA1-1"}}
    assert EXPANDER.expand("vs:without-blue") == {CS: {"red", "crimson"}}


@pytest.mark.parametrize("url, why", [
    ("vs:filter", "filter"), ("vs:external", "external terminology urn:ietf:bcp:13"),
    ("vs:fragment", "only part"), ("vs:loop", "itself"), ("vs:nowhere", "not defined"),
])
def test_what_cannot_be_expanded_says_why(url: str, why: str) -> None:
    with pytest.raises(NotExpandable, match=why):
        EXPANDER.expand(url)


def test_canonical_drops_the_version() -> None:
    assert canonical("http://hl7.org/fhir/ValueSet/x|4.0.1") == "http://hl7.org/fhir/ValueSet/x"


def _element(path: str, *types: str, binding: str | None = None, **more: object) -> dict:
    element: dict = {"path": path, "type": [{"code": t} for t in types], **more}
    if binding:
        element["binding"] = {"strength": "required", "valueSet": binding + "|4.0.1"}
    return element


SD = {"resourceType": "StructureDefinition", "kind": "resource", "type": "Thing",
      "derivation": "specialization", "snapshot": {"element": [
          {"path": "Thing"},
          _element("Thing.status", "code", binding="vs:whole"),
          _element("Thing.shade", "code", binding="vs:external"),
          _element("Thing.note", "string"),
          _element("Thing.extension", "Extension"),
          _element("Thing.part", "BackboneElement"),
          _element("Thing.part.value[x]", "Quantity", "string"),
          _element("Thing.part.part", contentReference="#Thing.part"),
      ]}}


def test_structures_keep_what_the_walk_needs() -> None:
    structures, bindings = structures_of(SD)
    assert structures == {"Thing": {"status": "code", "shade": "code", "part": "Thing.part"},
                          "Thing.part": {"value[x]": "Quantity", "part": "Thing.part"}}
    assert bindings == {"Thing.status": "vs:whole", "Thing.shade": "vs:external"}


def test_generate_lists_the_uncheckable_and_its_provenance() -> None:
    files = {"StructureDefinition-Thing.json": SD,
             **{f"ValueSet-{i}.json": v for i, v in enumerate(VALUE_SETS.values())},
             **{f"CodeSystem-{i}.json": {**c, "url": u}
                for i, (u, c) in enumerate(CODE_SYSTEMS.items())}}
    manifest = {"name": "example.package", "version": "1.0.0", "fhirVersions": ["4.0.1"],
                "dist": {"integrity": "sha512-abc", "shasum": "def"}}
    data = generate(manifest, files)
    assert data["bindings"] == {"Thing.status": "vs:whole"}
    assert "urn:ietf:bcp:13" in data["notCheckable"]["Thing.shade"]
    assert data["valueSets"] == {"vs:whole": {CS: ["blue", "crimson", "red"]}}
    assert data["provenance"]["integrity"] == "sha512-abc"
    assert data["resourceTypes"] == ["Thing"]

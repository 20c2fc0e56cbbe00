"""A sensitive diagnosis is labelled however a writer spells it (attacker F4).

Each spelling below was stored unlabelled and read back by clinic-a, whose TREAT consent
from alice covers no mental-health, HIV or other sensitive class: every one of them must now
be labelled, so clinic-a, its own writer, gets 404 for it like for any labelled record.
"""

import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.fhir.codes import canonical_code, canonical_system, codings
from tests.community import Community

FHIR = "application/fhir+json"
ICD10 = "http://hl7.org/fhir/sid/icd-10"

# (system, code) as written; None is a coding without a system.
SPELLINGS: dict[str, tuple[str | None, str]] = {
    "https": ("https://hl7.org/fhir/sid/icd-10", "F32.9"),
    "upper-case host and path": ("HTTP://HL7.ORG/fhir/sid/ICD-10", "F32.9"),
    "trailing blank": ("http://hl7.org/fhir/sid/icd-10 ", "F32.9"),
    "trailing query": ("http://hl7.org/fhir/sid/icd-10?", "F32.9"),
    "trailing fragment": ("http://hl7.org/fhir/sid/icd-10#", "F32.9"),
    "icd-10-who": ("http://hl7.org/fhir/sid/icd-10-who", "F32.9"),
    "WHO's own name": ("http://id.who.int/icd/release/10", "F32.9"),
    "ICD-10-GM": ("http://fhir.de/CodeSystem/bfarm/icd-10-gm", "F32.9"),
    "Chinese national ICD-10 OID": ("urn:oid:2.16.156.10011.2.3.3.11", "F32.9"),
    "LOINC OID": ("urn:oid:2.16.840.1.113883.6.1", "44249-1"),
    "LOINC over https with www": ("https://www.loinc.org", "44249-1"),
    "no system": (None, "F32.9"),
    "ICD-9-CM": ("http://hl7.org/fhir/sid/icd-9-cm", "296.20"),
    "ICD-11": ("http://id.who.int/icd/release/11/mms", "6A70"),
    "SNOMED CT depression": ("http://snomed.info/sct", "35489007"),
    "SNOMED CT HIV by OID": ("urn:oid:2.16.840.1.113883.6.96", "86406008"),
    "zero-width space": (ICD10, "F3\u200b2.9"),
    "soft hyphen": (ICD10, "F\u00ad32.9"),
    "combining mark": (ICD10, "F\u030132.9"),
    "Cyrillic Ve for B": (ICD10, "\u0412" + "20"),
    "Greek digamma for F": (ICD10, "\u03dc" + "32.9"),
    "blank inside": (ICD10, "F 32.9"),
    "hyphen inside": (ICD10, "F-32.9"),
    "en dash inside": (ICD10, "F\u201332.9"),
    "Arabic-Indic digits": (ICD10, "F\u0663\u0662.\u0669"),
    "full-width letters": (ICD10, "\uff26\uff13\uff12.\uff19"),
}


def _coding(system: str | None, code: str) -> dict[str, str]:
    return {"code": code} if system is None else {"system": system, "code": code}


def _post(community: Community, resource: dict[str, Any]) -> Any:
    headers = {**community.headers("clinic-a", "TREAT", "system/*.cruds"),
               "Content-Type": FHIR}
    return community.http.post(f"/fhir/{resource['resourceType']}", json=resource,
                               headers=headers)


def _condition(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Condition", "subject": {"reference": "Patient/alice"},
            "onsetDateTime": "2024-05-02", **extra}


def _hidden_from_its_writer(community: Community, resource: dict[str, Any]) -> None:
    created = _post(community, resource)
    assert created.status_code == 201, created.text
    r = community.http.get(f"/fhir/Condition/{created.json()['id']}",
                           headers=community.headers("clinic-a"))
    assert r.status_code == 404


# Spellings R4 itself does not allow (a uri holds no whitespace): refused on the way in,
# which stores nothing to label, rather than labelled.
NOT_R4 = frozenset({"trailing blank"})


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_a_sensitive_code_is_labelled_however_it_is_spelled(community: Community,
                                                           spelling: str) -> None:
    system, code = SPELLINGS[spelling]
    condition = _condition(code={"coding": [_coding(system, code)]})
    if spelling in NOT_R4:
        refused = _post(community, condition)
        assert refused.status_code == 422, refused.text
        assert refused.json()["issue"][0]["expression"] == ["Condition.code.coding[0].system"]
        return
    _hidden_from_its_writer(community, condition)


def test_a_code_in_a_tag_is_a_code(community: Community) -> None:
    _hidden_from_its_writer(community, _condition(
        code={"coding": [_coding(ICD10, "I10")]},
        meta={"tag": [_coding(ICD10, "F32.9")]}))


def test_a_code_carried_by_an_extension_is_a_code(community: Community) -> None:
    """``_code`` and ``_system`` are the primitive's extensions: whoever reads the record
    reads them as its code and system."""
    ext = "http://example.org/fhir/StructureDefinition/original-text"
    _hidden_from_its_writer(community, _condition(code={"coding": [
        {"system": ICD10, "_code": {"extension": [{"url": ext, "valueString": "F32.9"}]}}]}))
    _hidden_from_its_writer(community, _condition(code={"coding": [
        {"_system": {"extension": [{"url": ext, "valueUri": ICD10}]}, "code": "B20"}]}))


def test_an_ordinary_diagnosis_is_not_labelled(community: Community) -> None:
    for system, code in ((ICD10, "I10"), ("https://HL7.org/fhir/sid/icd-10/", "I10"),
                         (None, "I10"), ("http://snomed.info/sct", "38341003")):
        created = _post(community, _condition(code={"coding": [_coding(system, code)]}))
        assert created.status_code == 201, created.text
        r = community.http.get(f"/fhir/Condition/{created.json()['id']}",
                               headers=community.headers("clinic-a"))
        assert r.status_code == 200
        # what was written is what is kept: the spelling is read, not rewritten
        assert r.json()["code"]["coding"] == [_coding(system, code)]


def test_a_code_that_cannot_be_read_is_refused_without_echo(community: Community) -> None:
    before = community.http.get("/fhir/Condition?subject=Patient/alice",
                                headers=community.headers("clinic-a")).json().get("total")
    code = "\u0424" + "32.9"  # a Cyrillic Ef, which looks like no Latin letter
    r = _post(community, _condition(code={"coding": [_coding(ICD10, code)]}))
    assert r.status_code == 400, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "code-invalid"
    assert code not in r.text
    after = community.http.get("/fhir/Condition?subject=Patient/alice",
                               headers=community.headers("clinic-a")).json().get("total")
    assert after == before


def test_a_local_code_in_any_script_is_kept(community: Community) -> None:
    created = _post(community, _condition(code={"coding": [
        {"system": "http://example.org/fhir/CodeSystem/local-diagnoses", "code": "高血压"}]}))
    assert created.status_code == 201, created.text


# -- the spelling, as a property ---------------------------------------------------------

INVISIBLE = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad",
                             " ", "\t", "\u3000", "\u0301"])


@given(st.sampled_from(["F32.9", "B20", "F10.2", "Z21", "A53.9", "O80"]),
       st.lists(st.tuples(st.integers(0, 6), INVISIBLE), max_size=4),
       st.booleans(), st.booleans())
def test_a_code_reads_the_same_through_invisible_and_compatibility_characters(
        code: str, insertions: list[tuple[int, str]], wide: bool, lower: bool) -> None:
    text = code.lower() if lower else code
    if wide:
        text = unicodedata.normalize("NFKC", text).translate(
            {c: c + 0xFEE0 for c in range(0x21, 0x7F)})
    for position, char in insertions:
        text = text[:position] + char + text[position:]
    assert canonical_code(text) == code


@given(st.sampled_from(["http", "https", "HTTP", "Https"]), st.sampled_from(["", "www."]),
       st.sampled_from(["", "/", "//", "?", "#", " ", "/?x=1"]))
def test_a_system_reads_the_same_however_its_address_is_written(
        scheme: str, www: str, tail: str) -> None:
    assert canonical_system(f"{scheme}://{www}LOINC.org{tail}") == "http://loinc.org"


def test_narrative_and_security_labels_are_not_read_as_clinical_codes() -> None:
    resource = {"resourceType": "Condition",
                "text": {"status": "generated", "div": "<div>F32.9</div>"},
                "meta": {"security": [{"system": ICD10, "code": "F32.9"}],
                         "tag": [{"system": ICD10, "code": "I10"}]},
                "code": {"coding": [{"system": ICD10, "code": "E11.9"}]}}
    assert sorted(c["code"] for c in codings(resource)) == ["E11.9", "I10"]

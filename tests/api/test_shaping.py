"""Shaping on the road: de-identification profiles, pseudonym domains, free-text scrubbing,
minimization per purpose."""

import json
from datetime import date, timedelta
from typing import Any

import pytest

from consent.model import build_consent
from exchange.config import Settings
from exchange.privacy.disclosure import Shaper
from exchange.privacy.methods import AGE_BAND, pseudonym, reveal
from exchange.privacy.profiles import compile_path, load_profiles
from exchange.privacy.shaping import keep_fields, withheld
from tests.community import Community
from tests.shapers import released

PROFILES = load_profiles(Settings().policy_dir / "exchange" / "profiles")
TODAY = date(2026, 11, 28)
ALICE = {"resourceType": "Patient", "id": "p1",
         "identifier": [{"system": "https://fhir.community-exchange.example/sid/resident-id",
                         "value": "330106194203081524"}],
         "name": [{"family": "王", "given": ["秀英"], "text": "王秀英"},
                  {"use": "usual", "family": "Wang", "given": ["Xiuying"]}],
         "telecom": [{"system": "phone", "value": "13812345678"}],
         "gender": "female", "birthDate": "1942-03-08",
         "address": [{"line": ["文二西路12号"], "city": "杭州市", "district": "西湖区",
                      "postalCode": "310012"}]}


def shaper(profile: str, key: bytes = b"k" * 32,
           patients: dict[str, dict[str, Any]] | None = None) -> Shaper:
    known = patients if patients is not None else {"p1": ALICE}
    return released(PROFILES[profile], key, b"s" * 64, known.get, TODAY, set(known))


def grant(community: Community, pid: str, organization: str = "Organization/hub",
          purpose: str = "CAREMGT") -> None:
    consent = build_consent(pid, organization, [purpose],
                            classes=["Patient", "Observation", "Condition"])
    r = community.http.post("/fhir/Consent", json=consent,
                            headers=community.resident_headers(pid))
    assert r.status_code == 201, r.text


def grant_lab(community: Community, pid: str) -> None:
    grant(community, pid, "Organization/lab", "HRESCH")


def test_research_receives_pseudonymized_records_that_still_link(
        small_k_community: Community) -> None:
    community = small_k_community
    grant_lab(community, "carol")
    h = community.headers("lab", "HRESCH")
    patients = community.http.get("/fhir/Patient", headers=h).json()
    assert patients["total"] == 1
    (patient,) = [e["resource"] for e in patients["entry"] if e["search"]["mode"] == "match"]
    assert patient["id"] != "carol"
    for element in ("name", "telecom", "birthDate", "identifier"):
        assert element not in patient
    (band,) = [e for e in patient["extension"] if e["url"] == AGE_BAND]
    assert band["valueRange"]["low"]["value"] % 10 == 0
    assert "address" not in patient  # research is not shown where anyone lives
    observations = community.http.get("/fhir/Observation", headers=h).json()
    refs = {e["resource"]["subject"]["reference"] for e in observations["entry"]
            if e["search"]["mode"] == "match"}
    assert refs == {f"Patient/{patient['id']}"}
    assert "carol" not in str(observations) and "张" not in str(patients)
    again = community.http.get("/fhir/Patient", headers=h).json()
    assert [e["resource"]["id"] for e in again["entry"] if e["search"]["mode"] == "match"] \
        == [patient["id"]]


def test_the_hub_receives_needs_not_records(small_k_community: Community) -> None:
    """Under care management the hub gets one Patient per resident, with facts derived
    from the record (an ADL band, a condition class, days since the last check) and no
    Observation, Condition, date or value as it is (#15.1)."""
    community = small_k_community
    grant(community, "carol")
    h = community.headers("hub", "CAREMGT")

    def facts() -> dict[str, str]:
        body = community.http.get("/fhir/Patient", headers=h).json()
        (patient,) = [e["resource"] for e in body["entry"] if e["search"]["mode"] == "match"]
        return {e["url"].rsplit("/", 1)[1]: e["valueCoding"]["code"].split("/", 1)[1]
                for e in patient.get("extension", []) if "/care-fact/" in e["url"]}

    assert facts() == {"days-since-last-check": "never"}  # carol has glucose readings only
    today = community.clock.now().date()
    snomed, loinc = "http://snomed.info/sct", "http://loinc.org"
    community.services.repository.ingest([
        {"resourceType": "Condition", "id": "care-carol-1",
         "subject": {"reference": "Patient/carol"},
         "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                        "condition-clinical", "code": "active"}]},
         "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]}},
        {"resourceType": "Observation", "id": "care-carol-2", "status": "final",
         "subject": {"reference": "Patient/carol"}, "valueInteger": 55,
         "code": {"coding": [{"system": snomed, "code": "273302005"}]},
         "effectiveDateTime": (today - timedelta(days=200)).isoformat()},
        {"resourceType": "Observation", "id": "care-carol-3", "status": "final",
         "subject": {"reference": "Patient/carol"},
         "code": {"coding": [{"system": loinc, "code": "85354-9"}]},
         "effectiveDateTime": (today - timedelta(days=30)).isoformat()}])
    assert facts() == {"condition-class": "cardiovascular", "adl-band": "severe-dependence",
                       "mobility-support": "needed", "days-since-last-check": "within-90-days"}
    body = community.http.get("/fhir/Patient", headers=h).json()
    (patient,) = [e["resource"] for e in body["entry"] if e["search"]["mode"] == "match"]
    assert {"name", "telecom", "birthDate"}.isdisjoint(patient)
    assert patient["address"][0].get("district") == "西湖区"
    for rtype in ("Observation", "Condition"):
        r = community.http.get(f"/fhir/{rtype}", headers=h)
        assert r.status_code == 200 and r.json()["total"] == 0, r.text
        read = community.http.get(f"/fhir/{rtype}/carol-glu-0", headers=h)
        assert read.status_code == 404
    assert "2024" not in json.dumps(body) and "7.2" not in json.dumps(body)


def test_pseudonyms_differ_between_domains() -> None:
    assert pseudonym(b"k" * 32, "Patient/x") != pseudonym(b"j" * 32, "Patient/x")
    assert pseudonym(b"k" * 32, "Patient/x") == pseudonym(b"k" * 32, "Patient/x")


def test_free_text_loses_id_numbers_mobiles_and_the_residents_own_name() -> None:
    resource = {"resourceType": "Observation", "id": "o1", "status": "final",
                "text": {"status": "generated", "div": "<div>王秀英</div>"},
                "subject": {"reference": "Patient/p1", "display": "王秀英"},
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}],
                         "text": "王秀英 heart rate, call 13812345678"},
                "note": [{"text": "王秀英（身份证 330106194203081524）请家属 139-1234-5678 "
                                  "回电；邻居 110101195001011234 也在。Xiuying Wang agreed."}],
                "extension": [{"url": "urn:x:remark", "valueString": "call +86 13812345678"},
                              {"url": "urn:x:nested", "extension": [
                                  {"url": "who", "valueString": "秀英 said so"}]}]}
    shaped = shaper("pseudonymized").shape(resource, "p1")
    assert shaped is not None
    text = str(shaped)
    for secret in ("王秀英", "秀英", "330106194203081524", "110101195001011234", "1234-5678",
                   "13812345678", "Xiuying Wang", "Patient/p1"):
        assert secret not in text, secret
    # Free text leaves by allow-list only (#15.5): none of it here, scrubbed or not.
    assert "text" not in shaped and "note" not in shaped and "extension" not in shaped
    assert "text" not in shaped["code"] and "请家属" not in text
    assert shaped["subject"] == {"reference": f"Patient/{pseudonym(b'k' * 32, 'Patient/p1')}"}


def test_extensions_are_shaped_like_any_element() -> None:
    resource = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
                "onsetDateTime": "2024-05-01",
                "extension": [
                    {"url": "urn:x:seen", "valueDate": "2024-05-11"},
                    {"url": "urn:x:home", "valueAddress": ALICE["address"][0]},
                    {"url": "urn:x:carer", "valueHumanName": {"text": "李建国"}},
                    {"url": "urn:x:wrap", "extension": [
                        {"url": "when", "valueDateTime": "2024-05-21T08:00:00+08:00"}]}]}
    shaped = shaper("pseudonymized").shape(resource, "p1")
    assert shaped is not None
    ext = {e["url"]: e for e in shaped["extension"]}
    onset = date.fromisoformat(shaped["onsetDateTime"])
    seen = date.fromisoformat(ext["urn:x:seen"]["valueDate"])
    when = date.fromisoformat(ext["urn:x:wrap"]["extension"][0]["valueDateTime"][:10])
    assert (seen - onset).days == 10 and (when - onset).days == 20  # intervals kept
    assert abs((onset - date(2024, 5, 1)).days) <= 30
    assert ext["urn:x:home"]["valueAddress"] == {"district": "西湖区", "city": "杭州市",
                                                 "postalCode": "310"}
    assert "urn:x:carer" not in ext and "李建国" not in str(shaped)


def test_one_date_offset_per_resident_and_domain() -> None:
    obs = {"resourceType": "Observation", "id": "o", "status": "final",
           "effectiveDateTime": "2024-01-10"}
    a = {shaper("pseudonymized", bytes([i]) * 32).shape(obs, "p1")["effectiveDateTime"]
         for i in range(12)}
    assert len(a) > 1  # domains shift differently
    same = shaper("pseudonymized")
    assert same.shape(obs, "p1") == same.shape(obs, "p1")


def test_patient_under_each_profile() -> None:
    pseudo = shaper("pseudonymized").shape(ALICE, "p1")
    research = shaper("research").shape(ALICE, "p1")
    identified = shaper("identified").shape(ALICE, "p1")
    assert identified == ALICE
    assert pseudo is not None and research is not None
    token = pseudo["identifier"][0]["value"]
    assert token.startswith("siv.") and "330106" not in str(pseudo)
    assert reveal(b"s" * 64, "Patient.identifier.value", token) == "330106194203081524"
    assert pseudo["address"] == [{"district": "西湖区", "city": "杭州市", "postalCode": "310"}]
    assert research["address"] == [{"city": "杭州市"}]
    band = next(e for e in research["extension"] if e["url"] == AGE_BAND)["valueRange"]
    assert band["low"]["value"] == 80 and band["high"]["value"] == 89
    for shaped in (pseudo, research):
        assert {"name", "telecom", "birthDate"}.isdisjoint(shaped)
        assert {"code": "PSEUDED", "system": "http://terminology.hl7.org/CodeSystem/"
                "v3-ObservationValue"} in shaped["meta"]["tag"]


def test_research_keeps_only_what_it_lists_and_perturbs_measurements() -> None:
    obs = {"resourceType": "Observation", "id": "o", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "15074-8"}]},
           "valueQuantity": {"value": 7.2, "unit": "mmol/L"},
           "performer": [{"reference": "Practitioner/dr-li"}],
           "bodySite": {"text": "left arm"}, "effectiveDateTime": "2024-01-10"}
    shaped = shaper("research").shape(obs, "p1")
    assert shaped is not None
    assert "performer" not in shaped and "bodySite" not in shaped
    value = shaped["valueQuantity"]["value"]
    # scaled per resident (±8%), noised per reading three times as wide as glucose
    # varies (±100%)
    assert 0 <= value <= 7.2 * 1.08 * 2 + 0.05
    assert value == round(value, 1)
    others = {shaper("research", patients={f"p{i}": ALICE}).shape(obs, f"p{i}")[
        "valueQuantity"]["value"] for i in range(8)}
    assert len(others) >= 6  # each resident its own scale and noise
    assert shaper("research").shape(obs, "p1") == shaped  # the same noise every time
    assert "unit" not in shaped["valueQuantity"]  # free text, and not a UCUM code


@pytest.mark.parametrize(("pattern", "path", "hit"), [
    ("*.id", "Patient.id", True), ("*.id", "Patient.name.id", False),
    ("**.reference", "Observation.subject.reference", True),
    ("**.reference", "Observation.reference", True),
    ("**.extension.value*", "Patient.extension.valueString", True),
    ("Patient.identifier.*", "Patient.identifier.use", True),
    ("Patient.identifier.*", "Patient.identifier", False),
    ("Observation.**.value", "Observation.component.valueQuantity.value", True),
])
def test_path_syntax(pattern: str, path: str, hit: bool) -> None:
    regex, _ = compile_path(pattern)
    assert (regex.fullmatch(path) is not None) is hit


def test_a_profile_with_an_unknown_method_does_not_load(tmp_path) -> None:
    (tmp_path / "bad.json").write_text('{"name": "bad", "default": "keep", '
                                       '"rules": [{"path": "*.id", "method": "blur"}]}')
    with pytest.raises(ValueError, match="blur"):
        load_profiles(tmp_path)


def test_keep_fields_and_withholding() -> None:
    resource = {"resourceType": "Patient", "id": "p", "name": [{"family": "王"}],
                "gender": "female", "meta": {"security": [{"system": "s", "code": "PSY"}]}}
    assert keep_fields(resource, ["*"]) is resource
    slim = keep_fields(resource, ["gender"])
    assert "name" not in slim and slim["gender"] == "female"
    assert withheld(resource, [{"system": "s", "code": "PSY"}])
    assert not withheld(resource, [{"system": "other", "code": "PSY"}])


def test_reidentification_is_the_exchanges_alone_and_is_recorded(
        small_k_community: Community) -> None:
    community = small_k_community
    grant(community, "carol")
    hub = community.headers("hub", "CAREMGT")
    (entry,) = [e for e in community.http.get("/fhir/Patient", headers=hub).json()["entry"]
                if e["search"]["mode"] == "match"]
    token = entry["resource"]["identifier"][0]["value"]
    ask = {"organization": "Organization/hub", "purpose": "CAREMGT", "token": token}
    office = community.headers("office", "HCOMPL",
                               scope="system/AuditEvent.rs system/Patient.r")
    assert community.http.post("/compliance/reidentify", json=ask,
                               headers=hub).status_code == 403
    r = community.http.post("/compliance/reidentify", json=ask, headers=office)
    assert r.status_code == 200, r.text
    assert r.json()["resident"] == "carol"
    other_domain = {**ask, "organization": "Organization/clinic-b", "purpose": "TREAT"}
    wrong = community.http.post("/compliance/reidentify", json=other_domain, headers=office)
    assert wrong.status_code == 400 and wrong.json()["resourceType"] == "OperationOutcome"
    _, page = community.services.ledger.query(resident="carol", limit=50)
    acts = [e for _, e in page if e.get("action") == "reidentify"]
    assert acts and acts[0]["outcome"] == "success"


def test_every_method_from_a_profile_file(tmp_path) -> None:
    (tmp_path / "custom.json").write_text(json.dumps({
        "name": "custom", "default": "redact", "date_shift_days": 0,
        "rules": [
            {"path": "*.id", "method": "keep"},
            {"path": "Patient.gender", "method": "substitute", "params": {"value": "unknown"}},
            {"path": "Patient.birthDate", "method": "generalize", "params": {"to": "year"}},
            {"path": "Patient.address", "method": "generalize",
             "params": {"to": "zone", "postal_digits": 2}},
            {"path": "Patient.telecom.value", "method": "cryptoHash"},
            {"path": "Patient.telecom", "method": "keep"},
            {"path": "Patient.name.text", "method": "encrypt"},
            {"path": "Patient.name.*", "method": "redact"},
            {"path": "Patient.name", "method": "keep"},
            {"path": "Patient.multipleBirthInteger", "method": "perturb",
             "params": {"absolute": 0.4, "round": 0}}]}))
    profile = load_profiles(tmp_path)["custom"]
    patient = {**ALICE, "multipleBirthInteger": 2}
    out = released(profile, b"k" * 32, b"s" * 64, {}.get, TODAY, {"p1"}).shape(patient, "p1")
    assert out is not None
    assert out["gender"] == "unknown" and out["birthDate"] == "1942"
    assert out["address"] == [{"district": "西湖区", "city": "杭州市", "postalCode": "31"}]
    assert out["telecom"] == [{"system": "phone", "value": out["telecom"][0]["value"]}]
    assert len(out["telecom"][0]["value"]) == 40 and "138" not in out["telecom"][0]["value"]
    text = out["name"][0]["text"]
    assert reveal(b"s" * 64, "Patient.name.text", text) == "王秀英"
    assert out["name"][1:] == [] and "family" not in out["name"][0] and "identifier" not in out
    assert out["multipleBirthInteger"] == 2  # noise within ±0.4, rounded back


def test_dates_inside_lists_of_primitives_are_shifted_too() -> None:
    resource = {"resourceType": "Observation", "id": "o", "status": "final",
                "effectiveDateTime": "2024-01-10",
                "extension": [{"url": "urn:x:visits", "valueString": "x"}],
                "note": [{"text": "ok"}],
                "identifier": [{"value": "a"}],
                "component": [{"code": {"text": "c"}, "valueDateTime": "2024-01-12"}]}
    resource["_unknownDates"] = ["2024-01-10", "2024-01-11"]  # a list of primitives
    shaped = shaper("pseudonymized").shape(resource, "p1")
    assert shaped is not None
    shifted = date.fromisoformat(shaped["effectiveDateTime"])
    offset = shifted - date(2024, 1, 10)
    assert [date.fromisoformat(d) - offset for d in shaped["_unknownDates"]] == \
        [date(2024, 1, 10), date(2024, 1, 11)]
    assert date.fromisoformat(shaped["component"][0]["valueDateTime"]) - offset == \
        date(2024, 1, 12)


def test_the_directory_is_not_pseudonymized_so_kept_references_resolve(
        community: Community) -> None:
    r = community.http.get("/fhir/Organization", headers=community.headers("hub", "CAREMGT"))
    assert r.status_code == 200, r.text
    ids = {e["resource"]["id"] for e in r.json()["entry"] if e["search"]["mode"] == "match"}
    assert "clinic-a" in ids


def test_a_pseudonymized_history_names_no_real_id_and_no_real_time(
        small_k_community: Community) -> None:
    community = small_k_community
    grant_lab(community, "carol")
    lab = community.headers("lab", "HRESCH")
    body = community.http.get("/fhir/Observation/_history", headers=lab).json()
    assert body["entry"], body
    text = json.dumps(body)
    assert "carol" not in text and "lastModified" not in text
    for entry in body["entry"]:
        rid = entry["request"]["url"].split("/")[1]
        assert entry["fullUrl"].endswith(rid) and len(rid) == 40


def test_a_resident_specific_object_is_never_shared_with_another_domain() -> None:
    """An object holding a reference is remembered per resident and domain only: after
    one domain has shaped it twice, another domain still gets its own pseudonym."""
    def encounter(role: str) -> dict[str, Any]:
        return {"resourceType": "Encounter", "id": "e", "status": "finished",
                "participant": [{"type": [{"coding": [{"system": "urn:x", "code": role}]}],
                                 "individual": {"reference": "Practitioner/dr-li"}}]}

    first = shaper("pseudonymized", b"a" * 32)
    first.shape(encounter("primary"), "p1")
    first.shape(encounter("consultant"), "p1")
    other = shaper("pseudonymized", b"b" * 32).shape(encounter("consultant"), "p1")
    assert other is not None
    assert other["participant"][0]["individual"]["reference"] == \
        f"Practitioner/{pseudonym(b'b' * 32, 'Practitioner/dr-li')}"

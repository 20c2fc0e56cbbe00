"""Shaping on the road: pseudonymized disclosures for the hub, minimization per purpose."""

from consent.model import build_consent
from exchange.privacy.shaping import keep_fields, pseudonym, pseudonymize, withheld
from tests.community import Community


def grant_hub(community: Community, pid: str) -> None:
    consent = build_consent(pid, "Organization/hub", ["CAREMGT"],
                            classes=["Patient", "Observation", "Condition"])
    r = community.http.post("/fhir/Consent", json=consent,
                            headers=community.resident_headers(pid))
    assert r.status_code == 201, r.text


def test_hub_receives_pseudonymized_records_that_still_link(community: Community) -> None:
    grant_hub(community, "carol")
    h = community.headers("hub", "CAREMGT")
    patients = community.http.get("/fhir/Patient", headers=h).json()
    assert patients["total"] == 1
    patient = patients["entry"][0]["resource"]
    assert patient["id"] != "carol"
    for element in ("name", "identifier", "telecom"):
        assert element not in patient
    assert patient["birthDate"] == "1950"
    assert patient["address"] == [{"city": "杭州市", "district": "西湖区"}]
    observations = community.http.get("/fhir/Observation", headers=h).json()
    refs = {e["resource"]["subject"]["reference"] for e in observations["entry"]}
    assert refs == {f"Patient/{patient['id']}"}
    assert "carol" not in str(observations) and "张" not in str(patients)
    again = community.http.get("/fhir/Patient", headers=h).json()
    assert again["entry"][0]["resource"]["id"] == patient["id"]


def test_pseudonyms_differ_between_domains() -> None:
    assert pseudonym(b"k" * 32, "Patient/x") != pseudonym(b"j" * 32, "Patient/x")
    assert pseudonym(b"k" * 32, "Patient/x") == pseudonym(b"k" * 32, "Patient/x")


def test_pseudonymize_drops_displays_and_narrative() -> None:
    resource = {"resourceType": "Observation", "id": "o1",
                "text": {"status": "generated", "div": "<div>王秀英</div>"},
                "subject": {"reference": "Patient/p1", "display": "王秀英"},
                "note": [{"text": "王秀英 says hello"}]}
    shaped = pseudonymize(resource, b"k" * 32)
    assert "王秀英" not in str(shaped)
    assert shaped["subject"]["reference"] == f"Patient/{pseudonym(b'k' * 32, 'Patient/p1')}"


def test_keep_fields_and_withholding() -> None:
    resource = {"resourceType": "Patient", "id": "p", "name": [{"family": "王"}],
                "gender": "female", "meta": {"security": [{"system": "s", "code": "PSY"}]}}
    assert keep_fields(resource, ["*"]) is resource
    slim = keep_fields(resource, ["gender"])
    assert "name" not in slim and slim["gender"] == "female"
    assert withheld(resource, [{"system": "s", "code": "PSY"}])
    assert not withheld(resource, [{"system": "other", "code": "PSY"}])

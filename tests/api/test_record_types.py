"""The whole record: the new types travel the same road as the old ones. A consenting
resident's clinic stores, reads, searches and versions them; another clinic, the insurer
and the hub learn nothing of them; sensitive ones are labelled wherever their codes sit;
the directory is shared and names no resident."""

from typing import Any

import pytest

from tests.community import Community, RegisteredClient, generate_key

FHIR = "application/fhir+json"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"


def _record(pid: str) -> dict[str, dict[str, Any]]:
    """One resource of each kind a community's record holds, for resident ``pid``."""
    me = {"reference": f"Patient/{pid}"}
    return {
        "AllergyIntolerance": {
            "resourceType": "AllergyIntolerance", "patient": me,
            "code": {"coding": [{"system": SNOMED, "code": "227493005", "display": "Cashew"}]},
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "code": "active"}]}},
        "Procedure": {"resourceType": "Procedure", "status": "completed", "subject": me,
                      "code": {"coding": [{"system": SNOMED, "code": "80146002"}]},
                      "performedDateTime": "2024-05-02"},
        "DiagnosticReport": {"resourceType": "DiagnosticReport", "status": "final",
                             "subject": me, "effectiveDateTime": "2024-05-03",
                             "code": {"coding": [{"system": LOINC, "code": "58410-2"}]}},
        "CarePlan": {"resourceType": "CarePlan", "status": "active", "intent": "plan",
                     "subject": me, "title": "Falls prevention"},
        "Goal": {"resourceType": "Goal", "lifecycleStatus": "active", "subject": me,
                 "description": {"text": "Walk 20 minutes a day"}},
        "QuestionnaireResponse": {  # an activities-of-daily-living assessment
            "resourceType": "QuestionnaireResponse", "status": "completed", "subject": me,
            "authored": "2024-06-01", "item": [{"linkId": "bathing", "answer": [
                {"valueCoding": {"system": "urn:example:adl", "code": "needs-help"}}]}]},
        "MedicationDispense": {
            "resourceType": "MedicationDispense", "status": "completed", "subject": me,
            "medicationCodeableConcept": {"text": "amlodipine 5 mg"}},
        "ServiceRequest": {"resourceType": "ServiceRequest", "status": "active",
                           "intent": "order", "subject": me,
                           "code": {"text": "home nursing visit"}},
        "Appointment": {"resourceType": "Appointment", "status": "booked",
                        "start": "2025-03-01T09:00:00+08:00",
                        "end": "2025-03-01T09:30:00+08:00",
                        "participant": [{"actor": me, "status": "accepted"}]},
        "DocumentReference": {"resourceType": "DocumentReference", "status": "current",
                              "subject": me, "content": [{"attachment": {
                                  "contentType": "text/plain", "data": "T0s="}}]},
    }


def _post(community: Community, client: str, resource: dict[str, Any],
          purpose: str = "TREAT") -> Any:
    headers = {**community.headers(client, purpose, "system/*.cruds"), "Content-Type": FHIR}
    return community.http.post(f"/fhir/{resource['resourceType']}", json=resource,
                               headers=headers)


@pytest.mark.parametrize("rtype", sorted(_record("alice")))
def test_a_consenting_residents_clinic_keeps_every_kind_of_record(
        community: Community, rtype: str) -> None:
    created = _post(community, "clinic-a", _record("alice")[rtype])
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    h = community.headers("clinic-a")
    read = community.http.get(f"/fhir/{rtype}/{rid}", headers=h)
    assert read.status_code == 200
    found = community.http.get(f"/fhir/{rtype}?patient=alice", headers=h).json()
    assert rid in {e["resource"]["id"] for e in found["entry"]}
    assert community.http.get(f"/fhir/{rtype}/{rid}/_history",
                              headers=h).json()["total"] == 1
    everything = community.http.get("/fhir/Patient/alice/$everything", headers=h).json()
    assert rid in {e["resource"]["id"] for e in everything["entry"]}
    # Others learn nothing: exactly the answer for an id that does not exist.
    for client, purpose in (("clinic-b", "TREAT"), ("insurer", "HPAYMT"),
                            ("hub", "CAREMGT")):
        other = community.headers(client, purpose)
        hidden = community.http.get(f"/fhir/{rtype}/{rid}", headers=other)
        missing = community.http.get(f"/fhir/{rtype}/no-such-id", headers=other)
        assert hidden.status_code == missing.status_code == 404
        search = community.http.get(f"/fhir/{rtype}?patient=alice", headers=other)
        if purpose == "CAREMGT":  # a real id is no parameter of the hub's: refused unrun
            assert search.status_code == 400, search.text
        else:
            assert search.status_code == 200 and search.json()["total"] == 0
    # And a clinic cannot file it in the record of a resident who did not consent to it.
    assert _post(community, "clinic-a", _record("carol")[rtype]).status_code == 422


def test_a_psychiatric_document_is_labelled_and_withheld(community: Community) -> None:
    report = {**_record("alice")["DocumentReference"], "context": {"practiceSetting": {
        "coding": [{"system": SNOMED, "code": "394587001", "display": "Psychiatry"}]}}}
    created = _post(community, "clinic-a", report)
    assert created.status_code == 201
    stored = created.json()
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"} in \
        stored["meta"]["security"]
    h = community.headers("clinic-a")
    assert community.http.get(f"/fhir/DocumentReference/{stored['id']}",
                              headers=h).status_code == 404
    found = community.http.get("/fhir/DocumentReference?patient=alice", headers=h).json()
    assert found["total"] == 0


def test_the_insurer_gets_financial_records_only(community: Community) -> None:
    """bob consented to the insurer for payment over Patient, Claim and Condition."""
    allergy = _post(community, "clinic-b", _record("bob")["AllergyIntolerance"])
    assert allergy.status_code == 201
    h = community.headers("insurer", "HPAYMT")
    r = community.http.get(f"/fhir/AllergyIntolerance/{allergy.json()['id']}", headers=h)
    assert r.status_code == 404
    assert community.http.get("/fhir/Claim?patient=bob", headers=h).json()["total"] == 1


def test_the_directory_is_shared_and_names_no_resident(community: Community) -> None:
    community.services.repository.ingest([
        {"resourceType": "Practitioner", "id": "dr-chen", "active": True,
         "name": [{"family": "陈", "given": ["医生"]}]},
        {"resourceType": "Location", "id": "health-hut", "status": "active",
         "name": "Health hut, east gate"}])
    for client, purpose in (("clinic-a", "TREAT"), ("insurer", "HPAYMT"), ("hub", "CAREMGT")):
        h = community.headers(client, purpose)
        assert community.http.get("/fhir/Practitioner/dr-chen", headers=h).status_code == 200
        found = community.http.get("/fhir/Location?name=health", headers=h).json()
        assert [e["resource"]["id"] for e in found["entry"]] == ["health-hut"]
    implant = {"resourceType": "Device", "status": "active",
               "patient": {"reference": "Patient/alice"}}
    # A clinic's system/*.cruds opens residents' records, never the shared directory.
    assert _post(community, "clinic-a", implant).status_code == 403
    # A registrar whose scopes name the directory's types keeps it, but no record of it
    # names a resident: every client reads the directory.
    pem, jwk = generate_key("ES384", "registrar-1")
    community.services.registry.add("registrar", "registrar", "Organization/clinic-a",
                                    "clinic", {"keys": [jwk]}, ["TREAT"],
                                    "system/Device.cu system/Location.cu")
    community.clients["registrar"] = RegisteredClient("registrar", "ES384", jwk["kid"], pem)
    h = {**community.headers("registrar", "TREAT", "system/Device.cu system/Location.cu"),
         "Content-Type": FHIR}
    assert community.http.post("/fhir/Location", json={
        "resourceType": "Location", "name": "Day-care centre"}, headers=h).status_code == 201
    r = community.http.post("/fhir/Device", json=implant, headers=h)
    assert r.status_code == 422
    assert "names no resident" in r.json()["issue"][0]["diagnostics"]
    plain = {"resourceType": "Device", "status": "active", "manufacturer": "Acme"}
    assert community.http.post("/fhir/Device", json=plain, headers=h).status_code == 201
    contained = {"resourceType": "Location", "name": "Day-care centre", "contained": [
        {"resourceType": "Patient", "id": "p", "name": [{"family": "王"}]}]}
    assert community.http.post("/fhir/Location", json=contained,
                               headers=h).status_code == 422


def test_a_directory_record_with_a_sensitive_code_stays_readable(
        community: Community) -> None:
    """A psychotherapy service names no resident: labelling it PSY would withhold it from
    every reader, its own registrar included."""
    pem, jwk = generate_key("ES384", "registrar-1")
    community.services.registry.add("registrar", "registrar", "Organization/clinic-a",
                                    "clinic", {"keys": [jwk]}, ["TREAT"],
                                    "system/HealthcareService.cru")
    community.clients["registrar"] = RegisteredClient("registrar", "ES384", jwk["kid"], pem)
    h = community.headers("registrar", "TREAT", "system/HealthcareService.cru")
    service = {"resourceType": "HealthcareService", "name": "Talking therapies",
               "specialty": [{"coding": [{"system": SNOMED, "code": "394587001"}]}]}
    r = community.http.post("/fhir/HealthcareService", json=service,
                            headers={**h, "Content-Type": FHIR})
    assert r.status_code == 201
    assert "security" not in (r.json().get("meta") or {})
    for headers in (h, community.headers("clinic-b")):
        got = community.http.get(f"/fhir/HealthcareService/{r.json()['id']}", headers=headers)
        assert got.status_code == 200


def test_types_outside_the_record_are_a_clear_404(community: Community) -> None:
    r = community.http.get("/fhir/StructureDefinition/x", headers=community.headers("clinic-a"))
    assert r.status_code == 404
    assert "StructureDefinition" in r.json()["issue"][0]["diagnostics"]


def test_searching_by_a_value_compares_decrypted_values(community: Community) -> None:
    """alice's glucose readings are 5.4, 6.1 and 7.2 mmol/L; bob's are the same and hidden
    from clinic-a. No value is indexed: the comparison is made on the decrypted record."""
    h = community.headers("clinic-a")

    def ids(query: str) -> set[str]:
        r = community.http.get(f"/fhir/Observation?{query}", headers=h)
        assert r.status_code == 200, r.text
        return {e["resource"]["id"] for e in r.json().get("entry", [])}

    assert ids("value-quantity=gt7") == {"alice-glu-2"}
    assert ids("value-quantity=5.4") == {"alice-glu-0"}
    assert ids("value-quantity=le6.1||mmol/L") == {"alice-glu-0", "alice-glu-1"}
    assert ids("value-quantity=ap6") == {"alice-glu-0", "alice-glu-1"}
    assert ids("value-quantity=gt5||kg") == set()
    assert ids("value-quantity=gt5&_summary=count") == set()
    total = community.http.get("/fhir/Observation?value-quantity=gt5&_summary=count",
                               headers=h).json()["total"]
    assert total == 3  # alice's three, none of bob's
    assert community.http.get("/fhir/Observation?value-quantity=gtabc",
                              headers=h).status_code == 400


def test_the_policy_knows_the_stored_types_and_no_others() -> None:
    """The policy's data and the generated definitions name the same directory, and no
    purpose opens a type the exchange does not store."""
    import json

    from exchange.config import Settings
    from exchange.fhir.search_params import DIRECTORY_TYPES, SUPPORTED_TYPES

    static = json.loads((Settings().policy_dir / "exchange" / "static" / "data.json")
                        .read_text())
    assert set(static["directory_types"]) == DIRECTORY_TYPES
    for purpose, rules in static["purposes"].items():
        assert set(rules["fields"]) <= SUPPORTED_TYPES | set(static["audit_types"]), purpose


def test_a_composite_matches_within_one_item(community: Community) -> None:
    """A blood pressure panel: systolic 150 and diastolic 80 in its components. The code and
    the value must match in the same component, as R4 defines a composite."""
    bp = {"resourceType": "Observation", "status": "final",
          "subject": {"reference": "Patient/alice"}, "effectiveDateTime": "2025-02-01",
          "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
          "component": [
              {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
               "valueQuantity": {"value": 150, "unit": "mm[Hg]"}},
              {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
               "valueQuantity": {"value": 80, "unit": "mm[Hg]"}}]}
    created = _post(community, "clinic-a", bp)
    assert created.status_code == 201
    rid = created.json()["id"]
    h = community.headers("clinic-a")

    def ids(query: str) -> set[str]:
        r = community.http.get(f"/fhir/Observation?{query}", headers=h)
        assert r.status_code == 200, r.text
        return {e["resource"]["id"] for e in r.json().get("entry", [])}

    assert ids("component-code-value-quantity=http://loinc.org|8480-6$gt140") == {rid}
    # 150 is a systolic value, 80 a diastolic one: no component has both of these.
    assert ids("component-code-value-quantity=http://loinc.org|8462-4$gt140") == set()
    assert ids("code-value-quantity=http://loinc.org|15074-8$gt7") == {"alice-glu-2"}
    assert ids("combo-code-value-quantity=8462-4$lt90") == {rid}
    # bob's twin readings stay hidden from clinic-a, composite or not.
    assert not any(i.startswith("bob") for i in ids(
        "code-value-quantity=http://loinc.org|15074-8$gt1"))
    r = community.http.get("/fhir/Observation?code-value-quantity=15074-8", headers=h)
    assert r.status_code == 400


@pytest.mark.parametrize("variant", ["securityLabel", "icd-10-cm lower case",
                                     "full-width code", "trailing slash"])
def test_sensitive_codes_are_found_however_they_are_written(community: Community,
                                                            variant: str) -> None:
    """Found by an attacker: these were stored unlabelled and read back by clinic-a."""
    record = dict(_record("alice")["DocumentReference"])
    if variant == "securityLabel":
        record["securityLabel"] = [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}]}]
    else:
        system, code = {"icd-10-cm lower case": ("http://hl7.org/fhir/sid/icd-10-cm", "f32.9"),
                        "full-width code": ("http://hl7.org/fhir/sid/icd-10", "Ｆ32.9"),
                        "trailing slash": ("http://hl7.org/fhir/sid/icd-10/", "F32.9")}[variant]
        record["category"] = [{"coding": [{"system": system, "code": code}]}]
    created = _post(community, "clinic-a", record)
    assert created.status_code == 201, created.text
    r = community.http.get(f"/fhir/DocumentReference/{created.json()['id']}",
                           headers=community.headers("clinic-a"))
    assert r.status_code == 404


def test_a_payer_sorts_by_what_it_is_shown(community: Community) -> None:
    """Found by an attacker: sorting by onset-date zeroed the insurer's results, since it
    is shown onsetDateTime but not the other forms of onset."""
    r = community.http.get("/fhir/Condition?_sort=-onset-date",
                           headers=community.headers("insurer", "HPAYMT"))
    assert {e["resource"]["id"] for e in r.json()["entry"]} == {"bob-htn"}


def test_a_composite_with_a_date_compares_like_a_date_parameter(community: Community) -> None:
    onset = {"resourceType": "Observation", "status": "final",
             "subject": {"reference": "Patient/alice"},
             "code": {"coding": [{"system": LOINC, "code": "11368-8"}]},
             "valueDateTime": "2024-05-02"}
    rid = _post(community, "clinic-a", onset).json()["id"]
    h = community.headers("clinic-a")
    for query, expected in (("ge2024-05-01", {rid}), ("eq2024-05", {rid}),
                            ("lt2024-05-01", set()), ("ne2024-05-02", set())):
        r = community.http.get(
            f"/fhir/Observation?code-value-date=http://loinc.org|11368-8${query}", headers=h)
        assert {e["resource"]["id"] for e in r.json().get("entry", [])} == expected, query

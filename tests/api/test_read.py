"""Reads through the real HTTP API: who may see what, and what everyone else sees."""

from tests.community import Community


def body_without_request_id(response) -> dict:
    body = response.json()
    for issue in body.get("issue", []):
        issue.get("details", {}).pop("text", None)
    return body


def test_consented_clinic_reads_resident(community: Community) -> None:
    r = community.http.get("/fhir/Patient/alice", headers=community.headers("clinic-a"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/fhir+json")
    assert r.json()["name"][0]["family"] == "王"
    assert r.headers["ETag"] == 'W/"1"'


def test_hidden_resident_answers_exactly_like_a_missing_one(community: Community) -> None:
    headers = community.headers("clinic-b")
    hidden = community.http.get("/fhir/Patient/alice", headers=headers)
    missing = community.http.get("/fhir/Patient/nobody-here", headers=headers)
    assert hidden.status_code == missing.status_code == 404
    assert body_without_request_id(hidden) == body_without_request_id(missing)
    assert set(hidden.headers) == set(missing.headers)
    hidden_obs = community.http.get("/fhir/Observation/alice-glu-0", headers=headers)
    assert hidden_obs.status_code == 404


def test_resident_without_consent_is_hidden_from_every_client(community: Community) -> None:
    for client in ("clinic-a", "clinic-b"):
        r = community.http.get("/fhir/Patient/carol", headers=community.headers(client))
        assert r.status_code == 404


def test_payment_purpose_cannot_read_treatment_data(community: Community) -> None:
    headers = community.headers("insurer", "HPAYMT")
    assert community.http.get("/fhir/Claim/bob-claim", headers=headers).status_code == 200
    assert community.http.get("/fhir/Observation/bob-glu-0",
                              headers=headers).status_code == 404


def test_payment_purpose_is_minimized(community: Community) -> None:
    r = community.http.get("/fhir/Patient/bob", headers=community.headers("insurer", "HPAYMT"))
    assert r.status_code == 200
    patient = r.json()
    assert "telecom" not in patient and "address" not in patient
    assert patient["birthDate"] == "1938-05-17"
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "SUBSETTED"} in patient["meta"]["tag"]


def test_clinic_with_payment_token_is_refused_a_purpose_it_lacks(community: Community) -> None:
    r = community.request_token("clinic-a", purpose="HPAYMT")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


def test_sensitive_resource_is_withheld_from_clinic_but_shown_to_resident(
        community: Community) -> None:
    clinic = community.http.get("/fhir/Observation/alice-psy",
                                headers=community.headers("clinic-a"))
    assert clinic.status_code == 404
    own = community.http.get("/fhir/Observation/alice-psy",
                             headers=community.resident_headers("alice"))
    assert own.status_code == 200


def test_resident_reads_own_record_without_any_consent(community: Community) -> None:
    r = community.http.get("/fhir/Patient/carol", headers=community.resident_headers("carol"))
    assert r.status_code == 200
    assert community.http.get("/fhir/Patient/alice",
                              headers=community.resident_headers("carol")).status_code == 404


def test_revoking_consent_denies_the_very_next_request(community: Community) -> None:
    headers = community.headers("clinic-a")
    assert community.http.get("/fhir/Observation/alice-glu-0", headers=headers).status_code \
        == 200
    consent = community.http.get("/fhir/Consent/alice-treat-a",
                                 headers=community.resident_headers("alice")).json()
    consent["status"] = "inactive"
    revoked = community.http.put("/fhir/Consent/alice-treat-a", json=consent,
                                 headers=community.resident_headers("alice"))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["meta"]["versionId"] == "2"
    assert community.http.get("/fhir/Observation/alice-glu-0", headers=headers).status_code \
        == 404
    search = community.http.get("/fhir/Observation", headers=headers).json()
    assert search["total"] == 0


def test_everything_returns_the_whole_visible_record(community: Community) -> None:
    r = community.http.get("/fhir/Patient/alice/$everything",
                           headers=community.headers("clinic-a"))
    assert r.status_code == 200
    types = [e["resource"]["resourceType"] for e in r.json()["entry"]]
    assert types.count("Observation") == 3  # the PSY-labelled one is withheld
    assert "Patient" in types and "Condition" in types
    assert "Claim" not in types  # treatment's minimization list has no claims
    assert community.http.get("/fhir/Patient/alice/$everything",
                              headers=community.headers("clinic-b")).status_code == 404


def test_scope_limits_what_a_token_reads(community: Community) -> None:
    headers = community.headers("clinic-a", scope="system/Patient.rs")
    assert community.http.get("/fhir/Patient/alice", headers=headers).status_code == 200
    assert community.http.get("/fhir/Observation/alice-glu-0",
                              headers=headers).status_code == 404


def test_directory_is_readable(community: Community) -> None:
    r = community.http.get("/fhir/Organization/clinic-a", headers=community.headers("clinic-b"))
    assert r.status_code == 200


def test_unknown_resource_type_and_endpoint_are_operation_outcomes(
        community: Community) -> None:
    headers = community.headers("clinic-a")
    for path in ("/fhir/Spaceship/1", "/nothing/here"):
        r = community.http.get(path, headers=headers)
        assert r.status_code == 404
        assert r.json()["resourceType"] == "OperationOutcome"


def test_landing_page_speaks_chinese_first_then_english(community: Community) -> None:
    r = community.http.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.text.index("社区健康数据交换") < r.text.index("Community Health Exchange")
    assert 'lang="zh-CN"' in r.text

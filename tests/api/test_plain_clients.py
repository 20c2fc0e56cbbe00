"""What a client that knows SMART and FHIR but nothing of this exchange meets: a token
without a purpose when it has one, a discovery document that lists what SMART asks and
nothing it does not offer, and errors that say what is wrong without telling what a
caller may not know."""

from typing import Any

import httpx
import jwt

from tests.community import ASSERTION_TYPE, Community, observation


def token_without_purpose(community: Community, client_id: str) -> httpx.Response:
    return community.http.post("/auth/token", data={
        "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": community.assertion(client_id), "scope": "system/*.rs"})


def test_a_client_with_one_purpose_need_not_send_it(community: Community) -> None:
    for client_id, purpose in (("clinic-b", "TREAT"), ("insurer", "HPAYMT")):
        r = token_without_purpose(community, client_id)
        assert r.status_code == 200, r.text
        claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
        assert claims["purpose_of_use"] == purpose == r.json()["purpose_of_use"]


def test_a_client_with_several_purposes_is_told_the_choices(community: Community) -> None:
    r = token_without_purpose(community, "clinic-a")  # TREAT and ETREAT
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "invalid_request"
    assert "ETREAT" in body["error_description"] and "TREAT" in body["error_description"]


def test_smart_configuration_lists_what_backend_services_need(community: Community) -> None:
    smart: dict[str, Any] = community.http.get("/.well-known/smart-configuration").json()
    # Required of every SMART server, and what Backend Services clients read.
    assert smart["token_endpoint"] == community.token_url
    assert smart["grant_types_supported"] == ["client_credentials"]
    assert "client-confidential-asymmetric" in smart["capabilities"]
    assert "permission-v2" in smart["capabilities"]
    assert smart["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert set(smart["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384",
                                                                              "ES384"}
    assert all(s.startswith("system/") for s in smart["scopes_supported"])
    # Nothing that is not offered: no launch, no authorization code, no OpenID Connect.
    for field in ("authorization_endpoint", "code_challenge_methods_supported", "issuer",
                  "response_types_supported", "introspection_endpoint"):
        assert field not in smart
    assert not {"launch-ehr", "launch-standalone", "client-public", "sso-openid-connect",
                "client-confidential-symmetric"} & set(smart["capabilities"])
    assert community.http.get(smart["jwks_uri"].replace("http://testserver", "")) \
        .status_code == 200


def test_capability_statement_lists_the_interactions(community: Community) -> None:
    cap = community.http.get("/fhir/metadata").json()
    observation_entry = next(r for r in cap["rest"][0]["resource"]
                             if r["type"] == "Observation")
    assert {"patch", "update", "create"} <= {i["code"] for i in observation_entry["interaction"]}
    assert observation_entry["conditionalCreate"] is True
    assert observation_entry["conditionalDelete"] == "single"
    assert observation_entry["updateCreate"] is False


def test_a_missing_write_scope_is_named(community: Community) -> None:
    h = community.headers("clinic-a", scope="system/Observation.rs system/Condition.cruds")
    obs = observation("x", "alice", "8867-4", "2025-01-01", 72, "/min")
    r = community.http.post("/fhir/Observation", json=obs, headers=h)
    assert r.status_code == 403
    assert "system/Observation.c" in r.json()["issue"][0]["diagnostics"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": obs, "request": {"method": "POST", "url": "Observation"}}]}
    r = community.http.post("/fhir", json=bundle, headers=h)
    assert r.status_code == 403 and r.json()["issue"][0]["expression"] == [
        "Bundle.entry[0].resource"]


def test_the_directory_is_not_written_by_a_clinic(community: Community) -> None:
    h = community.headers("clinic-a", scope="system/*.cruds")
    org = {"resourceType": "Organization", "name": "Another clinic"}
    r = community.http.post("/fhir/Organization", json=org, headers=h)
    assert r.status_code == 403
    assert "community directory" in r.json()["issue"][0]["diagnostics"]
    r = community.http.put("/fhir/Organization/clinic-b",
                           json={**org, "id": "clinic-b"}, headers=h)
    assert r.status_code == 403
    assert community.http.get("/fhir/Organization/clinic-b",
                              headers=h).json()["name"] == "Organization clinic-b"


def test_a_resident_unknown_to_the_caller_stays_unknown(community: Community) -> None:
    h = community.headers("clinic-b", scope="system/*.cruds")
    hidden = observation("x", "alice", "8867-4", "2025-01-01", 72, "/min")
    missing = observation("x", "nobody", "8867-4", "2025-01-01", 72, "/min")
    a = community.http.post("/fhir/Observation", json=hidden, headers=h)
    b = community.http.post("/fhir/Observation", json=missing, headers=h)
    assert a.status_code == b.status_code == 422
    assert a.json()["issue"][0]["diagnostics"] == b.json()["issue"][0]["diagnostics"]

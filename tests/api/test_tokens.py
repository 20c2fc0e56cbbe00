"""SMART Backend Services token endpoint and access-token checks."""

import base64
import hashlib
import hmac
import json

import jwt
from cryptography.hazmat.primitives import serialization

from tests.community import Community


def test_rs384_and_es384_clients_get_short_lived_tokens(community: Community) -> None:
    for client in ("clinic-a", "clinic-b"):  # RS384, ES384
        r = community.request_token(client, scope="system/Observation.rs system/Patient.rs")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"] == "bearer" and body["expires_in"] <= 300
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["sub"] == client and claims["purpose_of_use"] == "TREAT"
        assert claims["org"] == f"Organization/{client}"
        assert claims["scope"] == "system/Observation.rs system/Patient.rs"
        assert r.headers["cache-control"] == "no-store"


def test_replayed_assertion_is_refused(community: Community) -> None:
    assertion = community.assertion("clinic-a")
    assert community.request_token("clinic-a", assertion=assertion).status_code == 200
    replay = community.request_token("clinic-a", assertion=assertion)
    assert replay.status_code == 401
    assert "replay" in replay.json()["error_description"]


def test_expired_and_far_future_assertions_are_refused(community: Community) -> None:
    now = community.clock.now().timestamp()
    old = community.assertion("clinic-a", now=now - 600)
    assert community.request_token("clinic-a", assertion=old).status_code == 401
    far = community.assertion("clinic-a", lifetime=3600)
    r = community.request_token("clinic-a", assertion=far)
    assert r.status_code == 401 and "five minutes" in r.json()["error_description"]


def test_wrong_audience_is_refused(community: Community) -> None:
    wrong = community.assertion("clinic-a", aud="http://elsewhere/token")
    r = community.request_token("clinic-a", assertion=wrong)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_iss_and_sub_must_be_the_client(community: Community) -> None:
    bad = community.assertion("clinic-a", extra={"sub": "clinic-b"})
    assert community.request_token("clinic-a", assertion=bad).status_code == 401


def test_assertion_signed_by_another_clients_key_is_refused(community: Community) -> None:
    c = community.clients["clinic-b"]
    forged = jwt.encode({"iss": "clinic-a", "sub": "clinic-a", "aud": community.token_url,
                         "exp": int(community.clock.now().timestamp()) + 60, "jti": "x1"},
                        c.pem, algorithm="ES384", headers={"kid": "clinic-a-1"})
    assert community.request_token("clinic-a", assertion=forged).status_code == 401


def _unsigned(claims: dict, header: dict) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{enc(header)}.{enc(claims)}."


def test_alg_none_assertion_and_token_are_refused(community: Community) -> None:
    claims = {"iss": "clinic-a", "sub": "clinic-a", "aud": community.token_url,
              "exp": int(community.clock.now().timestamp()) + 60, "jti": "none-1"}
    r = community.request_token("clinic-a", assertion=_unsigned(claims, {"alg": "none"}))
    assert r.status_code == 401
    real = jwt.decode(community.token("clinic-a"), options={"verify_signature": False})
    forged = _unsigned(real, {"alg": "none", "typ": "JWT"})
    r = community.http.get("/fhir/Patient", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    assert r.json()["resourceType"] == "OperationOutcome"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_hs256_with_the_public_key_is_refused(community: Community) -> None:
    """The classic confusion attack: an HMAC keyed with the server's public key."""
    jwks = community.http.get("/.well-known/jwks.json").json()
    public_pem = jwt.PyJWK.from_dict(jwks["keys"][0]).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    real = jwt.decode(community.token("clinic-a"), options={"verify_signature": False})
    unsigned = _unsigned(real, {"alg": "HS256", "typ": "JWT"})[:-1]
    mac = hmac.new(public_pem, unsigned.encode(), hashlib.sha256).digest()
    forged = unsigned + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    r = community.http.get("/fhir/Patient", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


def test_expired_access_token_is_refused(community: Community) -> None:
    headers = community.headers("clinic-a")
    assert community.http.get("/fhir/Patient", headers=headers).status_code == 200
    community.clock.advance(seconds=301)
    r = community.http.get("/fhir/Patient", headers=headers)
    assert r.status_code == 401 and "expired" in r.json()["issue"][0]["diagnostics"]


def test_tampered_access_token_is_refused(community: Community) -> None:
    token = community.token("clinic-a")
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["org"] = "Organization/clinic-b"
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    r = community.http.get("/fhir/Patient",
                           headers={"Authorization": f"Bearer {head}.{payload}.{sig}"})
    assert r.status_code == 401


def test_deactivated_client_loses_access_at_once(community: Community) -> None:
    headers = community.headers("clinic-a")
    community.services.registry.set_active("clinic-a", False)
    assert community.http.get("/fhir/Patient", headers=headers).status_code == 401
    assert community.request_token("clinic-a").status_code == 401


def test_unregistered_purpose_and_unknown_client_and_bad_scopes(community: Community) -> None:
    r = community.request_token("insurer", purpose="TREAT")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = community.request_token("insurer", purpose="HPAYMT", scope="system/Observation.c")
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = community.request_token("insurer", purpose="HPAYMT", scope="patient/*.rs openid")
    assert r.status_code == 400
    community.clients["ghost"] = community.clients["clinic-a"]
    r = community.request_token("ghost", assertion=community.assertion("ghost")
                                .replace("x", "x"))
    assert r.status_code == 401
    r = community.http.post("/auth/token", data={"grant_type": "password"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


def test_missing_or_malformed_bearer_is_401(community: Community) -> None:
    for header in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer not.a.jwt"}):
        r = community.http.get("/fhir/Observation", headers=header)
        assert r.status_code == 401


def test_discovery_documents(community: Community) -> None:
    smart = community.http.get("/.well-known/smart-configuration").json()
    assert smart["token_endpoint"] == community.token_url
    assert "private_key_jwt" in smart["token_endpoint_auth_methods_supported"]
    assert {"RS384", "ES384"} <= set(smart["token_endpoint_auth_signing_alg_values_supported"])
    assert community.http.get("/fhir/.well-known/smart-configuration").json() == smart
    cap = community.http.get("/fhir/metadata").json()
    assert cap["fhirVersion"] == "4.0.1"
    ext = cap["rest"][0]["security"]["extension"][0]
    assert ext["url"].endswith("oauth-uris")
    assert {"url": "token", "valueUri": community.token_url} in ext["extension"]

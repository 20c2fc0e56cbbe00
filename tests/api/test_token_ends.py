"""Tokens are checked at both ends: assertions from the future are refused, and the
exchange's own access tokens are held on every request to the client's registration as
it is now, even if whoever signed them held the exchange's key."""

from typing import Any

import pytest

from tests.community import Community


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_an_assertion_from_the_future_is_refused(community: Community, claim: str) -> None:
    now = community.clock.now().timestamp()
    ahead = community.assertion("clinic-a", extra={claim: int(now) + 3600})
    r = community.request_token("clinic-a", assertion=ahead)
    assert r.status_code == 401 and "future" in r.json()["error_description"]
    # Within the leeway a clock a few seconds fast is fine.
    close = community.assertion("clinic-a", extra={claim: int(now) + 5})
    assert community.request_token("clinic-a", assertion=close).status_code == 200
    last = list(community.services.ledger.entries())[-2]
    assert (last["action"], last["outcome"]) == ("token", "refused")


def _forged(community: Community, **changes: Any) -> dict[str, str]:
    """An access token signed with the exchange's own key (as if it had leaked)."""
    now = int(community.clock.now().timestamp())
    claims = {"iss": community.services.tokens.issuer, "sub": "clinic-a",
              "aud": community.services.tokens.audience, "iat": now, "exp": now + 300,
              "jti": "forged-1", "kind": "client", "client_id": "clinic-a",
              "org": "Organization/clinic-a", "org_kind": "clinic",
              "scope": "system/*.rs", "purpose_of_use": "TREAT", **changes}
    token = community.services.tokens._sign(claims)
    return {"Authorization": f"Bearer {token}"}


def test_a_token_like_the_ones_issued_works(community: Community) -> None:
    r = community.http.get("/fhir/Patient/alice", headers=_forged(community))
    assert r.status_code == 200


@pytest.mark.parametrize("changes", [
    {"exp": 10 ** 10},                                     # ten-year lifetime
    {"iat": 10 ** 10 - 100, "exp": 10 ** 10},             # issued in the future
    {"purpose_of_use": "HPAYMT"},                          # a purpose never registered
    {"sub": "insurer", "client_id": "insurer", "org": "Organization/insurer",
     "org_kind": "insurer", "purpose_of_use": "HPAYMT",
     "scope": "system/*.cruds"},                           # beyond its registration (.rs)
    {"scope": "system/*.rs patient/*.rs"},                 # a context never granted
    {"scope": "x"},                                        # no scope at all
], ids=["ten-years", "future-iat", "unregistered-purpose", "extra-scope", "patient-context",
     "junk-scope"])
def test_a_token_beyond_what_the_exchange_issues_is_refused(community: Community,
                                                            changes: dict[str, Any]) -> None:
    before = community.services.ledger.size()
    r = community.http.get("/fhir/Patient/alice", headers=_forged(community, **changes))
    assert r.status_code == 401, r.text
    assert "alice" not in r.text
    entry = community.services.ledger.read(before + 1)
    assert entry is not None and entry["action"] == "authenticate"
    assert entry["outcome"] == "refused"


def test_a_narrowed_registration_narrows_its_tokens_at_once(community: Community) -> None:
    headers = community.headers("clinic-a", scope="system/*.cruds")
    assert community.http.get("/fhir/Patient/alice", headers=headers).status_code == 200
    client = community.services.registry.get("clinic-a")
    assert client is not None
    community.services.registry.add("clinic-a", client.name, client.organization,
                                    client.organization_kind, client.jwks,
                                    list(client.purposes), "system/Patient.rs")
    r = community.http.get("/fhir/Patient/alice", headers=headers)
    assert r.status_code == 401
    # A token within the narrowed registration works.
    narrow = community.headers("clinic-a", scope="system/Patient.rs")
    assert community.http.get("/fhir/Patient/alice", headers=narrow).status_code == 200
    # Dropping a purpose from the registration ends that purpose's tokens.
    community.services.registry.add("clinic-a", client.name, client.organization,
                                    client.organization_kind, client.jwks, ["ETREAT"],
                                    "system/Patient.rs")
    assert community.http.get("/fhir/Patient/alice", headers=narrow).status_code == 401

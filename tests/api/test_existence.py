"""No existence oracle: for every way of asking about one id, a resource the caller may
not see answers exactly as an id that does not exist (status, body and headers)."""

import pytest

from exchange.store.repository import Write
from tests.community import Community

# (hidden path, missing path): a withheld label, another resident, an excluded type,
# a resident who consented to nobody.
PAIRS = [
    ("/fhir/Observation/alice-psy", "/fhir/Observation/no-such"),
    ("/fhir/Observation/alice-psy/_history", "/fhir/Observation/no-such/_history"),
    ("/fhir/Observation/alice-psy/_history/1", "/fhir/Observation/no-such/_history/1"),
    ("/fhir/Observation/bob-glu-0", "/fhir/Observation/no-such"),
    ("/fhir/Observation/bob-glu-0/_history", "/fhir/Observation/no-such/_history"),
    ("/fhir/Claim/alice-claim", "/fhir/Claim/no-such"),
    ("/fhir/Claim/alice-claim/_history", "/fhir/Claim/no-such/_history"),
    ("/fhir/Patient/carol", "/fhir/Patient/no-such"),
    ("/fhir/Patient/carol/$everything", "/fhir/Patient/no-such/$everything"),
    ("/fhir/Patient/carol/_history", "/fhir/Patient/no-such/_history"),
    ("/fhir/Consent/bob-treat-b/$receipt", "/fhir/Consent/no-such/$receipt"),
]


@pytest.mark.parametrize(("hidden", "missing"), PAIRS, ids=[h for h, _ in PAIRS])
def test_hidden_answers_exactly_like_missing(community: Community, hidden: str,
                                             missing: str) -> None:
    h = {**community.headers("clinic-a"), "X-Request-ID": "same-request"}
    a, b = community.http.get(hidden, headers=h), community.http.get(missing, headers=h)
    assert a.status_code == b.status_code == 404
    assert a.content == b.content
    assert dict(a.headers) == dict(b.headers)


def test_type_history_names_no_deleted_resource_the_caller_could_not_see(
        community: Community) -> None:
    community.services.repository.apply([Write("delete", "Observation", "alice-psy"),
                                         Write("delete", "Observation", "alice-glu-1")])
    history = community.http.get("/fhir/Observation/_history?_count=500",
                                 headers=community.headers("clinic-a")).json()
    urls = [e["request"]["url"] for e in history["entry"]]
    assert "Observation/alice-glu-1" in urls  # a deletion of what it could see
    assert not any("alice-psy" in u for u in urls)
    assert not any("bob" in u or "carol" in u for u in urls)

"""The decision cache: fast when nothing changed, never stale past a consent change or a
consent period's edge."""

from datetime import timedelta
from typing import Any

import pytest

from consent.model import build_consent
from exchange.app import build_services
from exchange.config import Settings
from exchange.decisions.bundle import TOKEN_GRANT
from tests.community import Community


class CountingPoint:
    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, 0
        self.revision = real.revision

    def decide(self, entry_point: str, policy_input: dict[str, Any]) -> dict[str, Any]:
        if entry_point != TOKEN_GRANT:  # issuing the token is not a data decision
            self.calls += 1
        return self.real.decide(entry_point, policy_input)  # type: ignore[no-any-return]


def test_unchanged_decisions_are_served_from_cache(community: Community) -> None:
    counting = CountingPoint(community.services.decider._point)
    community.services.decider._point = counting  # type: ignore[assignment]
    headers = community.headers("clinic-a")
    for _ in range(5):
        assert community.http.get("/fhir/Patient/alice", headers=headers).status_code == 200
    assert counting.calls == 1


@pytest.mark.parametrize("interaction", ["read", "search"])
def test_revocation_in_another_worker_denies_within_a_second(community: Community,
                                                             interaction: str) -> None:
    headers = community.headers("clinic-a")

    def visible() -> bool:
        if interaction == "read":
            return community.http.get("/fhir/Patient/alice",
                                      headers=headers).status_code == 200
        found = community.http.get("/fhir/Observation?patient=alice", headers=headers)
        assert found.status_code == 200
        return int(found.json()["total"]) > 0

    assert visible()
    # A second exchange process on the same database (another API worker) revokes.
    other = build_services(Settings(data_dir=community.services.settings.data_dir,
                                    base_url="http://testserver"))
    consent = other.repository.read("Consent", "alice-treat-a")
    assert consent is not None
    import orjson

    from exchange.store.repository import Write

    body = orjson.loads(consent.body)
    body["status"] = "inactive"
    other.repository.apply([Write("update", "Consent", "alice-treat-a", body)])
    # This worker re-reads a resident's consent stamp once it is half a second old, so
    # half a second after the revocation (on its own clock) nothing is disclosed.
    community.monotonic.advance(community.services.decider.STAMP_SECONDS)
    assert not visible(), "revocation not seen within a second"
    other.engine.dispose()


def test_cached_permit_ends_with_the_consent_period(community: Community) -> None:
    now = community.clock.now()
    consent = build_consent("carol", "Organization/clinic-b", ["TREAT"],
                            end=now + timedelta(minutes=10))
    created = community.http.post("/fhir/Consent", json=consent,
                                  headers=community.resident_headers("carol"))
    assert created.status_code == 201
    headers = community.headers("clinic-b")
    assert community.http.get("/fhir/Patient/carol", headers=headers).status_code == 200
    community.clock.advance(minutes=11)
    headers = community.headers("clinic-b")
    assert community.http.get("/fhir/Patient/carol", headers=headers).status_code == 404


def test_revocation_reaches_a_disclosure_already_under_way(community: Community) -> None:
    """A search that is still being prepared when the resident revokes (in another worker)
    and runs past the consent refresh does not leave: 503, recorded as denied."""
    import orjson

    from exchange.store.repository import Write

    headers = community.headers("clinic-a")
    other = build_services(Settings(data_dir=community.services.settings.data_dir,
                                    base_url="http://testserver"))
    repository = community.services.repository
    real_search = repository.search

    def slow_search(*args: Any, **kwargs: Any) -> Any:
        found = real_search(*args, **kwargs)
        consent = other.repository.read("Consent", "alice-treat-a")
        assert consent is not None
        body = orjson.loads(consent.body)
        body["status"] = "inactive"
        other.repository.apply([Write("update", "Consent", "alice-treat-a", body)])
        community.monotonic.advance(0.6)  # longer than the consent cache's refresh
        return found

    repository.search = slow_search  # type: ignore[method-assign]
    try:
        r = community.http.get("/fhir/Observation?patient=alice", headers=headers)
    finally:
        repository.search = real_search  # type: ignore[method-assign]
        other.engine.dispose()
    assert r.status_code == 503, r.text
    assert r.json()["issue"][0]["details"]["coding"][0]["code"] == "consent-changed"
    assert "alice-glu" not in r.text
    _, page = community.services.ledger.query(resident="alice", limit=5)
    assert page[0][1]["action"] == "search" and page[0][1]["outcome"] == "denied"
    # Asked again, the answer follows the consent as it now is.
    again = community.http.get("/fhir/Observation?patient=alice", headers=headers).json()
    assert again["total"] == 0


def test_a_quick_disclosure_is_not_checked_twice(community: Community) -> None:
    calls = []
    real = community.services.decider.still_current
    community.services.decider.still_current = (  # type: ignore[method-assign]
        lambda *a: calls.append(a) or real(*a))
    assert community.http.get("/fhir/Patient/alice",
                              headers=community.headers("clinic-a")).status_code == 200
    assert calls == []


def test_labels_are_asked_once_per_set_of_codes_and_again_under_a_new_policy(
        community: Community) -> None:
    decider = community.services.decider
    counting = CountingPoint(decider._point)
    decider._point = counting  # type: ignore[assignment]

    def coded(code: str) -> dict[str, Any]:
        return {"resourceType": "Condition", "subject": {"reference": "Patient/alice"},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10",
                                     "code": code}]}}

    first = decider.labels_for(coded("F32.9"))
    assert first == [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "PSY"}]
    first[0]["code"] = "changed by the caller"  # a caller's copy: the cache keeps its own
    assert decider.labels_for(coded("F32.9")) == decider.labels_for(coded("Ｆ32.9"))
    assert decider.labels_for(coded("F32.9"))[0]["code"] == "PSY"
    assert counting.calls == 1
    assert decider.labels_for(coded("I10")) == []
    assert counting.calls == 2
    counting.revision = "another policy"
    decider.labels_for(coded("F32.9"))
    assert counting.calls == 3

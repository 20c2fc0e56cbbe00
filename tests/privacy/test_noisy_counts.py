"""The hub's cockpit counts: differential privacy with a stated epsilon (#15.2), over the
real HTTP API, and the mechanism itself (OpenDP's discrete Laplace)."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.model import build_consent
from exchange.gate.aggregates import EPSILON_URL
from exchange.privacy.noise import noisy_counts
from tests.community import Community


@settings(max_examples=30, deadline=None)
@given(counts=st.lists(st.integers(min_value=0, max_value=500), min_size=1, max_size=40),
       epsilon=st.floats(min_value=0.05, max_value=5), sensitivity=st.integers(1, 4))
def test_the_epsilon_stated_is_openDPs_and_counts_stay_counts(
        counts: list[int], epsilon: float, sensitivity: int) -> None:
    released = noisy_counts(counts, epsilon, sensitivity)
    assert released.epsilon == pytest.approx(epsilon)
    assert len(released.counts) == len(counts) and min(released.counts) >= 0


def test_the_noise_is_real_and_centred() -> None:
    draws = [noisy_counts([100], 0.5, 1).counts[0] for _ in range(400)]
    assert len(set(draws)) > 10  # not a constant
    assert abs(sum(draws) / len(draws) - 100) < 2.5  # scale 2: mean within a few tenths
    with pytest.raises(ValueError):
        noisy_counts([1], 0, 1)


def _measure(community: Community, client: str = "hub", purpose: str = "CAREMGT"):
    return community.http.get("/fhir/Measure/care-needs/$evaluate-measure",
                              headers=community.headers(client, purpose))


def test_the_hub_gets_zone_counts_with_a_stated_epsilon_once_a_day(
        community: Community) -> None:
    for pid in ("alice", "bob", "carol"):
        r = community.http.post("/fhir/Consent", json=build_consent(
            pid, "Organization/hub", ["CAREMGT"], classes=["Patient", "Observation",
                                                             "Condition"]),
            headers=community.resident_headers(pid))
        assert r.status_code == 201, r.text
    first = _measure(community)
    assert first.status_code == 200, first.text
    report = first.json()
    assert report["resourceType"] == "MeasureReport" and report["type"] == "summary"
    (epsilon,) = [e["valueDecimal"] for e in report["extension"] if e["url"] == EPSILON_URL]
    assert epsilon == pytest.approx(0.5)
    facts = [g["code"]["coding"][0]["code"] for g in report["group"]]
    assert facts == ["mobility-support", "adl-band", "days-since-last-check"]
    strata = report["group"][2]["stratifier"][0]["stratum"]
    zones = Counter(s["value"]["text"] for s in strata)
    assert set(zones) == {"上城区", "拱墅区", "西湖区", "滨江区", "other"}  # fixed strata
    counts = [s["population"][0]["count"] for g in report["group"]
              for s in g["stratifier"][0]["stratum"]]
    # three residents, all in 西湖区 with no check on record: the true table is all zeros
    # but three cells; noise of scale 6 moves most cells.
    assert sum(1 for c in counts if c != 0) > 3
    assert "alice" not in first.text and "王" not in first.text
    # The same question the same day: the same answer, no new spending.
    again = _measure(community)
    assert again.status_code == 200 and again.content == first.content
    releases = community.services.repository.noisy_releases
    day = report["period"]["start"]
    assert releases.spent("Organization/hub/CAREMGT", day) == pytest.approx(0.5)
    # With the day's budget spent elsewhere, a new release is refused, recorded.
    releases.record("Organization/hub/CAREMGT", day, "other", 0.9, b"{}")
    with community.services.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM noisy_release WHERE query LIKE 'care-needs/%'")
    refused = _measure(community)
    assert refused.status_code == 429, refused.text
    assert refused.json()["resourceType"] == "OperationOutcome"
    _, page = community.services.ledger.query(limit=50)
    acts = [e for _, e in page if e.get("action") == "aggregate"]
    assert {a["outcome"] for a in acts} >= {"success"} and len(acts) == 3


def test_no_other_recipient_gets_the_measure(community: Community) -> None:
    for client, purpose in (("clinic-a", "TREAT"), ("insurer", "HPAYMT"), ("lab", "HRESCH")):
        assert _measure(community, client, purpose).status_code == 403
    assert community.http.get("/fhir/Measure/other/$evaluate-measure", headers=community.headers(
        "hub", "CAREMGT")).status_code == 404
    assert community.http.get("/fhir/Measure/care-needs/$evaluate-measure?zone=x",
                              headers=community.headers("hub", "CAREMGT")).status_code == 400

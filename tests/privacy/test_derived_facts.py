"""Facts derived for the hub (#15.1): the reductions the profile's rules name."""

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.privacy.derived import derive, extensions, load_facts
from exchange.privacy.profiles import load_profiles

TODAY = date(2026, 12, 1)
FACTS = load_profiles(Path("policies/exchange/profiles"))["care-needs"].facts
BANDS = ["total-dependence", "severe-dependence", "moderate-dependence", "slight-dependence",
         "independent"]


def barthel(score: int, days_ago: int) -> dict:
    return {"resourceType": "Observation", "valueInteger": score,
            "effectiveDateTime": (TODAY - timedelta(days=days_ago)).isoformat()}


@settings(max_examples=80, deadline=None)
@given(scores=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 2000)), min_size=1,
                       max_size=8, unique_by=lambda t: t[1]))
def test_the_adl_band_is_the_latest_assessments_and_bands_are_ordered(scores) -> None:
    readings = [barthel(s, d) for s, d in scores]
    latest = min(scores, key=lambda t: t[1])[0]
    got = derive(FACTS, {"adl-band": readings, "mobility-support": readings}, TODAY)
    band = got["adl-band"][0]
    expected = 0 if latest < 21 else 1 if latest < 61 else 2 if latest < 91 else \
        3 if latest < 100 else 4
    assert band == BANDS[expected]
    assert got["mobility-support"] == ["needed" if latest < 75 else "not-needed"]


def test_condition_classes_and_days_since_the_last_check() -> None:
    icd = "http://hl7.org/fhir/sid/icd-10"
    conditions = [{"code": {"coding": [{"system": icd, "code": c}]}}
                  for c in ("I10", "E11.9", "i25.1", "Z00")]
    checks = [{"effectiveDateTime": (TODAY - timedelta(days=d)).isoformat()}
              for d in (400, 120)]
    got = derive(FACTS, {"condition-class": conditions, "days-since-last-check": checks},
                 TODAY)
    assert got["condition-class"] == ["cardiovascular", "diabetes"]
    assert got["days-since-last-check"] == ["within-a-year"]
    assert derive(FACTS, {}, TODAY) == {"days-since-last-check": ["never"]}
    carried = extensions(got, ["days-since-last-check"])
    assert [e["valueCoding"]["code"] for e in carried] == ["days-since-last-check/within-a-year"]


def test_a_fact_with_an_unknown_reduction_or_an_open_band_does_not_load() -> None:
    with pytest.raises(ValueError, match="reduce"):
        load_facts([{"name": "x", "from": "Observation", "reduce": "median"}])
    with pytest.raises(ValueError, match="last band"):
        load_facts([{"name": "x", "from": "Observation", "reduce": "latest",
                     "bands": [{"below": 3, "code": "low"}]}])

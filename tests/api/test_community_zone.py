"""The community's time zone (#14.6): a date or time without a zone is read where the
community lives (Asia/Shanghai unless set), at the day boundary, in searches, in stored
dates and in a consent's end."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from consent.model import build_consent
from exchange.config import Settings
from tests.community import Community, build_community, observation


def ids(community: Community, query: str) -> set[str]:
    r = community.http.get(f"/fhir/Observation?subject=Patient/alice&{query}",
                           headers=community.headers("clinic-a"))
    assert r.status_code == 200, r.text
    return {e["resource"]["id"] for e in r.json().get("entry", [])}


def early_and_late(community: Community) -> None:
    community.services.repository.ingest([
        # 02:00 in Hangzhou on the 5th is 18:00 UTC on the 4th
        observation("early", "alice", "8867-4", "2026-01-05T02:00:00+08:00", 70, "/min"),
        # 03:00 in Hangzhou on the 6th is 19:00 UTC on the 5th
        observation("late", "alice", "8867-4", "2026-01-06T03:00:00+08:00", 72, "/min"),
        # a date alone: the 5th, in Hangzhou
        observation("dated", "alice", "8867-4", "2026-01-05", 71, "/min"),
    ])


def test_a_day_searched_is_the_communitys_day_its_first_hours_included(
        tmp_path: Path) -> None:
    community = build_community(tmp_path)
    early_and_late(community)
    assert ids(community, "code=8867-4&date=2026-01-05") == {"early", "dated"}
    assert ids(community, "code=8867-4&date=2026-01-06") == {"late"}
    # a time of day without a zone is the community's too: 02:00 there, not in London
    # (the dated reading's whole day overlaps the hour, so it matches as R4 says)
    assert ids(community, "code=8867-4&date=ge2026-01-05T01:30&date=lt2026-01-05T02:30") \
        == {"early", "dated"}
    assert ids(community, "code=8867-4&date=ge2026-01-06T02:30&date=lt2026-01-06T03:30") \
        == {"late"}
    # a zone given is honoured as given
    assert ids(community, "code=8867-4&date=ge2026-01-05T18:00:00Z"
                          "&date=lt2026-01-05T19:30:00Z") == {"late"}


def test_a_stored_date_is_the_communitys_day(tmp_path: Path) -> None:
    community = build_community(tmp_path)
    early_and_late(community)
    # The 5th in Hangzhou is 16:00 UTC on the 4th to 16:00 UTC on the 5th.
    assert "dated" in ids(community, "code=8867-4&date=lt2026-01-04T17:00:00Z")
    assert "dated" not in ids(community, "code=8867-4&date=ge2026-01-05T16:00:00Z")


def test_another_zone_is_a_setting(tmp_path: Path) -> None:
    community = build_community(tmp_path, time_zone="UTC")
    early_and_late(community)
    # read in UTC, the 5th holds the late reading and misses the early one
    assert ids(community, "code=8867-4&date=2026-01-05") == {"late", "dated"}


def test_an_unknown_zone_is_refused_saying_what_to_give() -> None:
    with pytest.raises(ValidationError, match="not an IANA time zone"):
        Settings(time_zone="China Standard Time")


def test_a_consent_until_a_day_ends_at_that_days_midnight_in_the_community(
        tmp_path: Path) -> None:
    community = build_community(tmp_path)
    when = datetime(2026, 3, 1, tzinfo=UTC)
    community.clock.at = when
    consent = {**build_consent("carol", "Organization/clinic-a", ["TREAT"], when=when),
               "id": "carol-until-march"}
    consent["provision"]["period"] = {"start": "2026-03-01", "end": "2026-03-31"}
    community.services.repository.ingest([consent])

    def reads() -> int:
        community.services.decider.invalidate("carol")
        return community.http.get("/fhir/Observation/carol-glu-0",
                                  headers=community.headers("clinic-a")).status_code

    community.clock.at = datetime(2026, 3, 31, 15, 59, tzinfo=UTC)  # 23:59 in Hangzhou
    assert reads() == 200
    community.clock.at = datetime(2026, 3, 31, 16, 1, tzinfo=UTC)  # 00:01 on 1 April there
    assert reads() == 404  # read as UTC, the consent would run eight hours more

"""What the compliance views read: filtered pages, counts per day, activity since a moment."""

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from exchange.audit.appending import AuditLog
from exchange.audit.views import AuditViews
from exchange.clock import FixedClock
from exchange.privacy.envelope import Vault
from exchange.privacy.key_file import LocalKeyFile

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CLINIC, INSURER = "Organization/clinic-a", "Organization/insurer"


def entry(resident: str | None, organization: str, purpose: str, outcome: str,
          action: str = "read") -> dict[str, Any]:
    return {"action": action, "outcome": outcome,
            "residents": [] if resident is None else [resident],
            "who": {"kind": "client", "organization": organization, "purpose": purpose}}


TRAFFIC = [  # one entry an hour from START
    entry("alice", CLINIC, "TREAT", "success"),          # 1  09:00
    entry("bob", CLINIC, "TREAT", "denied"),             # 2  10:00
    entry("alice", INSURER, "HPAYMT", "success", "export"),  # 3  11:00
    entry("alice", CLINIC, "TREAT", "refused"),          # 4  12:00
    entry(None, INSURER, "HPAYMT", "denied", "search"),  # 5  13:00
    entry("bob", CLINIC, "ETREAT", "success"),           # 6  14:00
]


@pytest.fixture
def views(engine: Engine, tmp_path: Path) -> AuditViews:
    vault = Vault(engine, LocalKeyFile(tmp_path / "keys.json"))
    clock = FixedClock(START)
    log = AuditLog(engine, vault, clock)
    for e in TRAFFIC:
        log.append(e)
        clock.advance(hours=1)
    return AuditViews(engine, vault)


def seqs(found: tuple[int, list[tuple[int, dict[str, Any]]]]) -> tuple[int, list[int]]:
    total, page = found
    return total, [seq for seq, _entry in page]


def test_query_without_filters_is_every_entry_newest_first(views: AuditViews) -> None:
    total, page = views.query()
    assert total == 6 and [seq for seq, _e in page] == [6, 5, 4, 3, 2, 1]
    assert page[-1][1] == {**TRAFFIC[0], "seq": 1, "time": "2026-03-01T09:00:00.000Z"}


def test_query_filters_by_resident(views: AuditViews) -> None:
    assert seqs(views.query(resident="alice")) == (3, [4, 3, 1])
    assert seqs(views.query(resident="bob")) == (2, [6, 2])
    assert seqs(views.query(resident="carol")) == (0, [])


def test_query_filters_by_outcome(views: AuditViews) -> None:
    assert seqs(views.query(outcomes=["denied"])) == (2, [5, 2])
    assert seqs(views.query(outcomes=["denied", "refused"])) == (3, [5, 4, 2])
    assert seqs(views.query(resident="alice", outcomes=["success"])) == (2, [3, 1])


def test_query_filters_by_organization_purpose_and_time(views: AuditViews) -> None:
    assert seqs(views.query(organization=INSURER)) == (2, [5, 3])
    assert seqs(views.query(purpose="ETREAT")) == (1, [6])
    assert seqs(views.query(since=START + timedelta(hours=2),
                            until=START + timedelta(hours=4))) == (2, [4, 3])


def test_query_pages_and_counts_the_whole_match(views: AuditViews) -> None:
    assert seqs(views.query(limit=2)) == (6, [6, 5])
    assert seqs(views.query(offset=2, limit=2)) == (6, [4, 3])
    assert seqs(views.query(offset=6)) == (6, [])


def test_a_doctored_filter_column_hides_nothing_it_names(
        views: AuditViews, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    """Moved to another resident in the column only: the entry says otherwise."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_entry SET resident = 'carol' WHERE seq = 2"))
    with caplog.at_level(logging.ERROR, logger="exchange.audit"):
        total, page = views.query(resident="carol")
    assert page == [] and total == 1
    assert "audit filter columns disagree with entry 2" in caplog.text


def test_counts_group_by_day_organization_purpose_outcome_and_action(
        views: AuditViews) -> None:
    assert sorted(views.counts(), key=str) == sorted([
        ("2026-03-01", CLINIC, "TREAT", "success", "read", 1),
        ("2026-03-01", CLINIC, "TREAT", "denied", "read", 1),
        ("2026-03-01", CLINIC, "TREAT", "refused", "read", 1),
        ("2026-03-01", CLINIC, "ETREAT", "success", "read", 1),
        ("2026-03-01", INSURER, "HPAYMT", "success", "export", 1),
        ("2026-03-01", INSURER, "HPAYMT", "denied", "search", 1),
    ], key=str)
    assert sum(r[-1] for r in views.counts(since=START + timedelta(hours=4))) == 2


def test_activity_since_a_moment_in_order_with_utc_times(views: AuditViews) -> None:
    assert views.activity(START + timedelta(hours=3, minutes=30)) == [
        (5, START + timedelta(hours=4), INSURER, "HPAYMT", "denied"),
        (6, START + timedelta(hours=5), CLINIC, "ETREAT", "success"),
    ]
    assert all(moment.tzinfo is not None for _s, moment, *_rest in views.activity(START))

"""Resource versions: every change a new version, reads by version, history newest first,
index rows that follow the current version only, all or nothing per call."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from exchange.app import build_services
from exchange.clock import FixedClock
from exchange.config import Settings
from exchange.errors import Conflict
from exchange.privacy.blind_index import BlindIndex
from exchange.services import Services
from exchange.store.resources import ResourceVersions, T, Write
from tests.community import observation, patient


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    s = build_services(Settings(data_dir=tmp_path),
                       clock=FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC)))
    yield s
    s.engine.dispose()


def versions_of(services: Services) -> ResourceVersions:
    return ResourceVersions(services.engine, services.vault,
                            BlindIndex(services.keys.derive("blind-index")), services.clock)


def term_rows(services: Services, rtype: str, rid: str) -> int:
    with services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(
            T.resource_type == rtype, T.resource_id == rid)).scalar_one())


def test_each_change_is_a_new_version_and_every_version_stays_readable(
        services: Services) -> None:
    versions = versions_of(services)
    clock = services.clock
    assert isinstance(clock, FixedClock)
    created, = versions.apply([Write("create", "Patient", "ann",
                                     patient("ann", "Li", "Ann", "R1", "555-0101"))])
    assert (created.version_id, created.patient_id, created.deleted) == (1, "ann", False)
    clock.advance(minutes=1)
    renamed = patient("ann", "Li", "Anna", "R1", "555-0101")
    versions.apply([Write("update", "Patient", "ann", renamed)])
    clock.advance(minutes=1)
    gone, = versions.apply([Write("delete", "Patient", "ann")])
    assert (gone.version_id, gone.deleted, gone.body) == (3, True, b"")

    state = versions.current("Patient", "ann")
    assert state is not None and (state.version_id, state.deleted) == (3, True)
    first = versions.read("Patient", "ann", 1)
    assert first is not None
    body = orjson.loads(first.body)
    assert body["name"][0]["given"] == ["Ann"]
    assert body["meta"] == {"versionId": "1", "lastUpdated": "2026-01-05T09:00:00.000Z"}
    current = versions.read("Patient", "ann")
    assert current is not None and current.deleted and current.version_id == 3
    assert versions.read("Patient", "nobody") is None

    history = versions.history("Patient", "ann", None, count=10)
    assert [h.version_id for h in history] == [3, 2, 1]
    assert [h.version_id for h in versions.history("Patient", "ann", None, count=2)] == [3, 2]
    assert versions.history("Patient", "ann", ["someone-else"], count=10) == []
    since = datetime(2026, 1, 5, 9, 1, tzinfo=UTC)
    assert [h.version_id for h in versions.history("Patient", None, ["ann"], 10, since)] \
        == [3, 2]


def test_index_rows_follow_the_current_version_only(services: Services) -> None:
    versions = versions_of(services)
    versions.apply([Write("create", "Patient", "ann",
                          patient("ann", "Li", "Ann", "R1", "555-0101"))])
    before = term_rows(services, "Patient", "ann")
    assert before > 0
    sparse = {"resourceType": "Patient", "id": "ann", "gender": "female"}
    versions.apply([Write("update", "Patient", "ann", sparse)])
    assert 0 < term_rows(services, "Patient", "ann") < before
    versions.apply([Write("delete", "Patient", "ann")])
    assert term_rows(services, "Patient", "ann") == 0


def test_a_call_applies_all_of_its_writes_or_none(services: Services) -> None:
    versions = versions_of(services)
    versions.apply([Write("create", "Patient", "ann",
                          patient("ann", "Li", "Ann", "R1", "555-0101"))])
    with pytest.raises(Conflict):
        versions.apply([
            Write("create", "Observation", "obs-1",
                  observation("obs-1", "ann", "2345-7", "2026-01-01", 5.4)),
            Write("create", "Patient", "ann", patient("ann", "Li", "Ann", "R1", "555-0101")),
        ])
    assert versions.read("Observation", "obs-1") is None
    assert term_rows(services, "Observation", "obs-1") == 0
    state = versions.current("Patient", "ann")
    assert state is not None and state.version_id == 1


def test_ingest_loads_first_versions_and_refuses_an_existing_id(services: Services) -> None:
    versions = versions_of(services)
    loaded = versions.ingest([patient("ann", "Li", "Ann", "R1", "555-0101"),
                              observation("obs-1", "ann", "2345-7", "2026-01-01", 5.4)])
    assert loaded == 2
    row = versions.read("Observation", "obs-1")
    assert row is not None and (row.version_id, row.patient_id) == (1, "ann")
    assert orjson.loads(row.body)["meta"]["versionId"] == "1"
    assert term_rows(services, "Observation", "obs-1") > 0
    with pytest.raises(Conflict):
        versions.ingest([patient("ann", "Li", "Ann", "R1", "555-0101")])

"""Erasing a resident leaves none of their versions and no index row that points at them;
the other residents' records and index rows stay as they were."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from exchange.app import build_services
from exchange.clock import FixedClock
from exchange.config import Settings
from exchange.privacy.blind_index import BlindIndex
from exchange.services import Services
from exchange.store.erasure import RecordEraser
from exchange.store.resources import INDEX_TABLES, RESOURCES, R, ResourceVersions, Write
from tests.community import observation, patient


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    s = build_services(Settings(data_dir=tmp_path),
                       clock=FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC)))
    yield s
    s.engine.dispose()


def index_rows(services: Services, resource_ids: list[str]) -> int:
    with services.engine.connect() as conn:
        return sum(int(conn.execute(select(func.count()).select_from(table).where(
            table.c.resource_id.in_(resource_ids))).scalar_one()) for table in INDEX_TABLES)


def versions_of(services: Services, patient_id: str) -> int:
    with services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(RESOURCES).where(
            R.patient_id == patient_id)).scalar_one())


def test_erasure_leaves_no_version_and_no_index_row_of_the_resident(
        services: Services) -> None:
    versions = ResourceVersions(services.engine, services.vault,
                                BlindIndex(services.keys.derive("blind-index")),
                                services.clock)
    versions.ingest([patient("ann", "Li", "Ann", "R1", "555-0101"),
                     patient("bob", "Wang", "Bob", "R2", "555-0102"),
                     observation("ann-1", "ann", "2345-7", "2026-01-01", 5.4),
                     observation("ann-2", "ann", "2345-7", "2026-01-02", 5.9),
                     observation("bob-1", "bob", "2345-7", "2026-01-02", 7.2)])
    versions.apply([Write("update", "Observation", "ann-1",
                          observation("ann-1", "ann", "2345-7", "2026-01-01", 5.5))])
    ann = ["ann", "ann-1", "ann-2"]
    assert index_rows(services, ann) > 0
    bob_rows = index_rows(services, ["bob", "bob-1"])

    assert RecordEraser(services.engine).erase("ann") == (3, 4)

    assert versions_of(services, "ann") == 0
    assert index_rows(services, ann) == 0
    assert versions.read("Observation", "ann-1", 1) is None
    assert versions_of(services, "bob") == 2
    assert index_rows(services, ["bob", "bob-1"]) == bob_rows
    assert RecordEraser(services.engine).erase("ann") == (0, 0)

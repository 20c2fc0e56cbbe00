"""The PostgreSQL store from a fresh install (#14.7): ``postgresql://`` URLs take the
declared driver (psycopg 3, the ``postgres`` extra), the community works over the HTTP
API, a write and its audit entry are one transaction there too, and concurrent writers
keep the ledger one unbroken chain (its appends are serialised by an advisory lock)."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from exchange.store.database import driver_url
from tests.community import Community, build_community, observation
from tests.postgres import new_database

psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed")
CRUDS = "system/*.cruds"


def test_a_postgresql_url_takes_the_declared_driver() -> None:
    assert driver_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert driver_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert driver_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert driver_url("sqlite:///x.db") == "sqlite:///x.db"


@pytest.fixture
def pg_community(tmp_path: Path, postgres_server: str) -> Iterator[tuple[Community, str]]:
    url = new_database(postgres_server)
    community = build_community(tmp_path, database_url=url)
    yield community, url
    community.services.engine.dispose()


def reading(value: float) -> dict[str, object]:
    obs = observation("x", "alice", "8867-4", "2025-01-01T08:00:00+08:00", value, "/min")
    del obs["id"]
    return obs


def test_the_community_works_on_postgresql(pg_community: tuple[Community, str]) -> None:
    community, _ = pg_community
    assert community.services.engine.dialect.driver == "psycopg"
    headers = community.headers("clinic-a", scope=CRUDS)
    r = community.http.get("/fhir/Observation?subject=Patient/alice&code=15074-8",
                           headers=headers)
    assert r.status_code == 200 and r.json()["total"] == 3
    r = community.http.post("/fhir/Observation", json=reading(71), headers=headers)
    assert r.status_code == 201, r.text
    assert community.http.get(r.headers["Location"].split("/_history")[0],
                              headers=headers).json()["valueQuantity"]["value"] == 71
    # Another clinic still sees nothing of Alice.
    assert community.http.get("/fhir/Patient/alice",
                              headers=community.headers("clinic-b")).status_code == 404


def test_a_write_whose_entry_fails_stores_nothing_on_postgresql(
        pg_community: tuple[Community, str]) -> None:
    community, url = pg_community
    headers = community.headers("clinic-a", scope=CRUDS)
    with psycopg.connect(url, autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM resource").fetchone()
        conn.execute("CREATE FUNCTION ledger_down() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN RAISE EXCEPTION 'ledger unavailable'; END $$")
        conn.execute("CREATE TRIGGER ledger_down BEFORE INSERT ON audit_entry "
                     "FOR EACH ROW EXECUTE FUNCTION ledger_down()")
    try:
        r = community.http.post("/fhir/Observation", json=reading(72), headers=headers)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER ledger_down ON audit_entry")
    assert r.status_code == 503
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM resource").fetchone() == before


def test_concurrent_writers_keep_one_unbroken_ledger(
        pg_community: tuple[Community, str]) -> None:
    community, _ = pg_community
    headers = community.headers("clinic-a", scope=CRUDS)
    start = community.services.ledger.size()

    def write(i: int) -> int:
        return community.http.post("/fhir/Observation", json=reading(60 + i),
                                   headers=headers).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(write, range(40)))
    assert statuses == [201] * 40
    assert community.services.ledger.size() >= start + 40
    report = community.services.ledger.verify()
    assert report.ok, report.problem

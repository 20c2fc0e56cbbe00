"""The search indexes at rest (#15): what a copy of the database file tells someone who
has no key, and what keeping it from them costs a search.

Two halves. ``attack`` plays the attacker on the SQLite file alone (the standard library's
``sqlite3``, no key): birth dates in clear, and blind-index tokens whose frequency across
the table singles out the holders of a rare code. The truth it is scored against (who
holds the code, each birth date) is read with the keys, by the exchange. ``code_search``
times searches through the whole road as a clinic makes them, and the store's part alone.

``python -m bench.index_at_rest --residents 300`` seeds a community and prints both;
``--data DIR`` measures an existing data directory instead (before and after a reindex).
"""

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from exchange.app import build_services
from exchange.config import Settings
from exchange.fhir.search import parse_search
from exchange.gate import RequestContext
from exchange.services import Services
from exchange.store.tables import ResourceRow

ICD10 = "http://hl7.org/fhir/sid/icd-10"
DEPRESSION = f"{ICD10}|F32.9"  # the demo's rare sensitive code (labelled PSY)
GLUCOSE = "http://loinc.org|15074-8"  # a code every resident's record holds


def truth(services: Services, code: str = "F32.9") -> tuple[set[str], dict[str, date]]:
    """Who holds ``code`` (a Condition) and every resident's birth date, read with keys."""
    with services.engine.connect() as conn:
        rows = list(conn.execute(
            select(ResourceRow.resource_type,  # type: ignore[call-overload]
                   ResourceRow.resource_id)
            .where(ResourceRow.is_current, ResourceRow.resource_type.in_(["Condition",
                                                                          "Patient"]))))
    holders: set[str] = set()
    births: dict[str, date] = {}
    for rtype, rid in rows:
        row = services.repository.read(rtype, rid)
        if row is None or row.deleted:
            continue
        body = orjson.loads(row.body)
        if rtype == "Patient" and "birthDate" in body:
            births[rid] = date.fromisoformat(body["birthDate"])
        elif rtype == "Condition" and row.patient_id and any(
                c.get("code") == code for c in body.get("code", {}).get("coding", [])):
            holders.add(row.patient_id)
    return holders, births


def clear_forms(day: date, zone: Any) -> tuple[str, tuple[str, str]]:
    """How a birth date reads where it is kept in clear: as text (``"1942-03-08"``), or as
    the range of instants its day is, both in one row (SQLite's naive UTC text)."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    end = (datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(days=1)) \
        .astimezone(UTC)
    return day.isoformat(), (f"{start:%Y-%m-%d %H:%M:%S}", f"{end:%Y-%m-%d %H:%M:%S}")


def dates_in_clear(conn: sqlite3.Connection, days: list[date], zone: Any) -> int:
    """How many of ``days`` some table holds in clear: every text and blob column of
    every row of every table is read."""
    texts: set[str] = set()  # whole values
    quoting: list[str] = []  # values with JSON in them
    rows_of: dict[str, set[tuple[str, int]]] = defaultdict(set)  # instant -> its rows
    blobs: list[bytes] = []
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"):
        for n, row in enumerate(conn.execute(f'SELECT * FROM "{table}"')):
            for value in row:
                if isinstance(value, bytes):
                    blobs.append(value)
                elif isinstance(value, str):
                    texts.add(value)
                    if '"' in value:
                        quoting.append(value)
                    if len(value) >= 19 and value[4] == "-" and value[10] in " T":
                        rows_of[value[:19]].add((table, n))
    blob = b"\x00".join(blobs)
    found = 0
    for day in days:
        text, (start, end) = clear_forms(day, zone)
        quoted = f'"{text}"'
        if text in texts or quoted.encode() in blob or rows_of[start] & rows_of[end] or \
                any(quoted in t for t in quoting):
            found += 1
    return found


def attack(db: Path, holders: set[str], births: dict[str, date],
           zone: Any) -> dict[str, Any]:
    """What the file alone gives away, scored against the truth."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        in_clear = dates_in_clear(conn, list(births.values()), zone)
        # Each blind token's residents, counted across the table: a rare code is a token
        # that few hold, and its rows name them.
        residents: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        for rtype, param, term, pid in conn.execute(
                "SELECT t.resource_type, t.param, t.term, r.patient_id FROM term_index t "
                "JOIN resource r ON r.resource_type = t.resource_type AND "
                "r.resource_id = t.resource_id AND r.is_current "
                "WHERE r.patient_id IS NOT NULL"):
            residents[(rtype, param, term)].add(pid)
        naming = [s for s in residents.values() if s == holders]
        widest = max((len(s) for s in residents.values()), default=0)
        labelled = {pid for (pid,) in conn.execute(
            "SELECT DISTINCT r.patient_id FROM term_index t JOIN resource r ON "
            "r.resource_type = t.resource_type AND r.resource_id = t.resource_id "
            "WHERE t.param = '_security' AND r.patient_id IS NOT NULL")}
        # Beyond the index: a Condition's ciphertext is as long as its plaintext.
        lengths: dict[int, set[str]] = defaultdict(set)
        for pid, size in conn.execute(
                "SELECT patient_id, length(content) FROM resource WHERE "
                "resource_type = 'Condition' AND is_current AND patient_id IS NOT NULL"):
            lengths[size].add(pid)
        by_length = set().union(*(s for s in lengths.values() if s <= holders))
    finally:
        conn.close()
    return {"residents": len(births), "birth_dates_in_clear": in_clear,
            "holders": len(holders),
            "singled_out_by_token": len(holders) if naming else 0,
            "most_residents_one_token": widest,
            "residents_with_a_label_row": len(labelled),
            "label_rows_name_the_holders": labelled == holders,
            "holders_by_condition_ciphertext_length": len(by_length & holders)}


def _median_ms(fn: Callable[[], Any], seconds: float) -> float:
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 5:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def code_search(services: Services, seconds: float = 2.0) -> dict[str, float]:
    """Median milliseconds of searches through the whole road as clinic-a (TREAT), and of
    the store's candidate step alone (the community-wide step the per-resident tokens
    change)."""
    client = services.registry.get("clinic-a")
    assert client is not None
    who = services.tokens.authenticate(services.tokens.issue(
        client, ["system/*.rs"], "TREAT")["access_token"])
    _, births = truth(services)
    some_birth = sorted(births.values())[len(births) // 2]
    searches = {
        "Condition?code=F32.9 (sensitive, rare)": ("Condition", [("code", DEPRESSION)]),
        "Observation?code=glucose&_count=50": ("Observation", [("code", GLUCOSE),
                                                               ("_count", "50")]),
        "Patient?name=王": ("Patient", [("name", "王")]),
        f"Patient?birthdate=eq{some_birth}": ("Patient", [("birthdate", f"eq{some_birth}")]),
        "Patient?birthdate=ge1940&lt1950": ("Patient", [("birthdate", "ge1940-03-01"),
                                                        ("birthdate", "lt1950-07-15")]),
        "Patient?_sort=birthdate&_count=20": ("Patient", [("_sort", "birthdate"),
                                                          ("_count", "20")]),
        # Event dates, held as their months (#15.6): settled in SQL, or by the edges.
        "Observation?code=glucose&date=2024-03": ("Observation", [
            ("code", GLUCOSE), ("date", "2024-03")]),
        "Observation?code=glucose&date=ge2024-03-15&_count=50": ("Observation", [
            ("code", GLUCOSE), ("date", "ge2024-03-15"), ("_count", "50")]),
        "Observation?code=glucose&_sort=-date&_count=50": ("Observation", [
            ("code", GLUCOSE), ("_sort", "-date"), ("_count", "50")]),
    }
    out: dict[str, float] = {}
    for name, (rtype, pairs) in searches.items():
        ctx = RequestContext("bench", "127.0.0.1", "GET", f"/fhir/{rtype}")

        def road(rtype: str = rtype, pairs: list[tuple[str, str]] = pairs,
                 ctx: RequestContext = ctx) -> None:
            services.gate.search(ctx, who, rtype, pairs)

        query = parse_search(rtype, pairs, zone=services.settings.zone)
        out[f"road  {name}"] = _median_ms(road, seconds)
        out[f"store {name}: candidates"] = _median_ms(
            lambda query=query: services.repository.candidate_residents(query), seconds)
    return out


def candidate_cost(sizes: tuple[int, ...] = (300, 3000, 30000),
                   seconds: float = 1.0) -> None:
    """The store's candidate step of a code search across the whole community as it
    grows: the step before any decision, where per-resident terms ask under every
    resident's key. Beside it, the same query over community-wide terms (the form
    before), kept in the same table under another key, so both read the same rows."""
    from sqlalchemy import insert

    from exchange.privacy.blind_index import BlindIndex
    from exchange.store.tables import TermIndex

    print("Candidate step of Condition?code=X across the community, median ms "
          "(community-wide terms -> per-resident terms)")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            services = build_services(Settings(data_dir=Path(tmp)))
            repository = services.repository
            old_rows = []
            secret = services.keys.derive("blind-index")
            old = BlindIndex(secret)
            for start in range(0, n, 2000):
                records: list[dict[str, Any]] = []
                for i in range(start, min(n, start + 2000)):
                    subject = {"reference": f"Patient/p{i}"}
                    records.append({"resourceType": "Patient", "id": f"p{i}",
                                    "birthDate": f"{1925 + i % 40}-0{1 + i % 9}-1{i % 10}"})
                    codes = ["I10", "F32.9"] if i % 17 == 0 else ["I10"]
                    for code in codes:
                        cid = f"c{i}-{code}"
                        records.append({"resourceType": "Condition", "id": cid,
                                        "subject": subject,
                                        "code": {"coding": [{"system": ICD10, "code": code}]}})
                        old_rows.append({"resource_type": "Condition", "resource_id": cid,
                                         "param": "before:code",
                                         "term": old.term("code", f"{ICD10}|{code}")})
                repository.ingest(records)
            with services.engine.begin() as conn:
                conn.execute(insert(TermIndex.__table__), old_rows)  # type: ignore[attr-defined]
            for code in ("F32.9", "I10"):
                query = parse_search("Condition", [("code", f"{ICD10}|{code}")])
                term = old.term("code", f"{ICD10}|{code}")
                T = TermIndex.__table__.c  # type: ignore[attr-defined]  # noqa: N806
                R = ResourceRow.__table__.c  # type: ignore[attr-defined]  # noqa: N806
                before = select(R.patient_id).where(
                    R.resource_type == "Condition", R.is_current, ~R.deleted,
                    R.resource_id.in_(select(T.resource_id).where(
                        T.resource_type == "Condition", T.param == "before:code",
                        T.term == term))).distinct()

                def community(before: Any = before, engine: Any = services.engine) -> None:
                    with engine.connect() as conn:
                        list(conn.execute(before))

                def per_resident(query: Any = query, found: Any = repository) -> None:
                    found.candidate_residents(query)

                fresh = BlindIndex(secret)
                start_keys = time.perf_counter()
                for i in range(n):
                    fresh.owned(f"p{i}", "code", f"{ICD10}|{code}")
                keying = (time.perf_counter() - start_keys) * 1e3
                holders = len(repository.candidate_residents(query))
                print(f"  {n:6d} residents, {code:<6} ({holders:5d} holders): "
                      f"{_median_ms(community, seconds):8.2f} -> "
                      f"{_median_ms(per_resident, seconds):8.2f}"
                      f"   (keying {n} terms afresh, uncached: {keying:.1f})")
            services.engine.dispose()


def report(services: Services, seconds: float) -> None:
    holders, births = truth(services)
    services.engine.dispose()
    found = attack(services.settings.data_dir / "exchange.db", holders, births,
                   services.settings.zone)
    print("The index at rest: a copy of the database file, no key")
    print(f"  birth dates in clear                  {found['birth_dates_in_clear']:5d} "
          f"of {found['residents']} residents")
    print(f"  holders of F32.9 singled out by a token's frequency "
          f"{found['singled_out_by_token']:3d} of {found['holders']}")
    print(f"  the most residents one token names    {found['most_residents_one_token']:5d}")
    print(f"  residents with a _security row        {found['residents_with_a_label_row']:5d}"
          f" (exactly the holders: {found['label_rows_name_the_holders']})")
    print(f"  beyond the index: holders told by a Condition's ciphertext length "
          f"{found['holders_by_condition_ciphertext_length']} of {found['holders']}")
    print_searches(services, seconds)


def print_searches(services: Services, seconds: float) -> None:
    print("Searches over per-resident terms and coarse birth dates, as clinic-a (TREAT), "
          "median ms")
    for name, ms in code_search(services, seconds).items():
        print(f"  {name:<58} {ms:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--residents", type=int, default=300)
    parser.add_argument("--data", type=Path, default=None,
                        help="measure this data directory instead of seeding one")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--scaling", type=int, nargs="*", default=None,
                        help="time the candidate step at these community sizes instead")
    args = parser.parse_args()
    if args.scaling is not None:
        candidate_cost(tuple(args.scaling or (300, 3000, 30000)), args.seconds / 2)
        return
    if args.data is not None:
        report(build_services(Settings(data_dir=args.data)), args.seconds)
        return
    from exchange.demo.seed import seed_demo

    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(Settings(data_dir=Path(tmp)))
        seed_demo(services, args.residents)
        report(services, args.seconds)
        services.engine.dispose()


if __name__ == "__main__":
    main()

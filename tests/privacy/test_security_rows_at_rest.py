"""Security labels at rest (#15): a copy of the database file, read without any key, does
not tell which records, hence which residents, carry a security label. Every record holds
``SECURITY_ROWS`` rows under ``_security``, its labels' terms and fillers that no one
without the key tells from them; and every search that reads those rows (withholding,
``_security``, ``:not``, ``:missing``, the labels that reach dependents) answers as it
did, here against a brute-force filter of the same caller's records."""

import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent.model import build_consent
from exchange.privacy.blind_index import BlindIndex
from exchange.store.indexing import (
    SECURITY,
    SECURITY_ROWS,
    index_entries,
    security_fillers,
    token_terms,
    unlabelled_marker,
)
from tests.community import Community, build_community, observation, patient

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
TEST_DATA = "http://terminology.hl7.org/CodeSystem/v3-ActReason"  # a label no one withholds
HEX = frozenset("0123456789abcdef")


def labelled(oid: str, pid: str, *labels: tuple[str, str]) -> dict[str, Any]:
    obs = observation(oid, pid, "44249-1", "2024-02-01", 9, "{score}")
    obs["meta"] = {"security": [{"system": s, "code": c} for s, c in labels]}
    return obs


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Community]:
    """The three-resident community (alice's PSY reading is withheld from clinic-a: her
    consent does not open it), and dan, who opens PSY to clinic-a: a reading with no
    label, one labelled PSY, one PSY with a label no policy withholds, one SUD (withheld)
    and one with four labels (withheld); the last two hold more than the pad."""
    community = build_community(tmp_path_factory.mktemp("labels"))
    repo = community.services.repository
    repo.ingest([patient("dan", "赵", "丹", "330106194404041234", "13600000001")])
    repo.ingest([
        observation("dan-glu", "dan", "15074-8", "2024-01-01T09:00:00+08:00", 5.5),
        labelled("dan-psy", "dan", (ACT, "PSY")),
        labelled("dan-psy-test", "dan", (ACT, "PSY"), (TEST_DATA, "HTEST")),
        labelled("dan-sud", "dan", (ACT, "SUD")),
        labelled("dan-many", "dan", (ACT, "PSY"), (ACT, "SUD"), (ACT, "HIV"),
                 (CONFIDENTIALITY, "R")),
        {**build_consent("dan", "Organization/clinic-a", ["TREAT"], labels=["PSY"]),
         "id": "dan-treat-a"}])
    yield community
    community.services.engine.dispose()


def security_rows(community: Community) -> dict[tuple[str, str], list[str]]:
    """The attacker's view: each current record's ``_security`` terms, from the file."""
    community.raw_db()  # folds the WAL in
    path = community.services.settings.data_dir / "exchange.db"
    rows: dict[tuple[str, str], list[str]] = defaultdict(list)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        for rtype, rid in conn.execute("SELECT resource_type, resource_id FROM resource "
                                       "WHERE is_current AND NOT deleted"):
            rows[(rtype, rid)] = []
        for rtype, rid, term in conn.execute(
                "SELECT resource_type, resource_id, term FROM term_index "
                "WHERE param = '_security'"):
            rows[(rtype, rid)].append(term)
    return rows


def test_every_record_holds_as_many_security_rows_labelled_or_not(town: Community) -> None:
    rows = security_rows(town)
    assert len(rows) > 30
    over = {("Observation", "dan-many"), ("Observation", "dan-psy-test")}
    within = {key: terms for key, terms in rows.items() if key not in over}
    assert {len(terms) for terms in within.values()} == {SECURITY_ROWS}
    # those with more labels than the pad keeps them all, and their count shows: two
    # labels of two systems, and four labels
    assert len(rows[("Observation", "dan-psy-test")]) == 3 + 3
    assert len(rows[("Observation", "dan-many")]) == 2 * 3 + 1 + 3
    # and they read alike: the same length and alphabet, no two records of different
    # residents sharing any
    terms = [t for ts in rows.values() for t in ts]
    assert all(len(t) == 32 and set(t) <= HEX for t in terms)
    owners: dict[str, set[str]] = defaultdict(set)
    for (_, rid), ts in rows.items():
        for t in ts:
            owners[t].add(rid.split("-")[0])
    assert max(len(o) for o in owners.values()) == 1


def test_without_the_pad_the_labelled_records_would_stand_out() -> None:
    """What the file held before: the records with a label were those with rows."""
    blind = BlindIndex(b"k" * 32)
    plain = observation("o1", "p1", "15074-8", "2024-01-01", 5.0)
    psy = observation("o2", "p1", "44249-1", "2024-01-01", 9.0, label="PSY")

    def real(resource: dict[str, Any]) -> int:
        fillers = set(security_fillers(blind, "p1", f"Observation/{resource['id']}", 0))
        return sum(1 for key, term in index_entries(resource, blind).terms
                   if key == SECURITY and term not in fillers)

    assert (real(plain), real(psy)) == (0, 3)
    assert [sum(1 for k, _ in index_entries(r, blind).terms if k == SECURITY)
            for r in (plain, psy)] == [SECURITY_ROWS, SECURITY_ROWS]


IDS = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)
CODES = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20)
LABELS = st.lists(st.tuples(st.one_of(st.none(), CODES), CODES), max_size=5)


@given(st.binary(min_size=32, max_size=32), st.one_of(st.none(), IDS), IDS, LABELS)
def test_fillers_are_the_records_own_and_never_a_labels_term(
        secret: bytes, owner: str | None, rid: str,
        labels: list[tuple[str | None, str]]) -> None:
    blind = BlindIndex(secret)
    resource = observation(rid, owner or "p", "15074-8", "2024-01-01", 5.0)
    resource["meta"] = {"security": [{"code": c, **({"system": s} if s else {})}
                                     for s, c in labels]}
    if owner is None:  # of no resident: keyed for the community
        del resource["subject"]
    entries = index_entries(resource, blind, owner=owner)
    again = index_entries(resource, BlindIndex(secret), owner=owner)
    assert entries.terms == again.terms  # indexed again, the same rows
    rows = [t for k, t in entries.terms if k == SECURITY]
    real = {blind.owned(owner, SECURITY, t) for s, c in labels
            for t in token_terms(SECURITY, s, c)}
    assert len(rows) == max(SECURITY_ROWS, len(real))
    fillers = set(blind.fillers(owner, SECURITY, f"Observation/{rid}", SECURITY_ROWS))
    assert set(rows) == real | (fillers & set(rows))
    assert not fillers & real  # no filler is ever a label's term
    assert all(len(t) == 32 and set(t) <= HEX for t in rows)
    # a record with no label holds its marker; one with a label never does
    assert (unlabelled_marker(blind, owner, f"Observation/{rid}") in rows) == (not real)
    # another record's fillers are its own
    other = set(blind.fillers(owner, SECURITY, f"Observation/{rid}x", SECURITY_ROWS))
    assert not other & fillers and not other & real


def test_a_fillers_slot_is_the_same_whatever_the_count() -> None:
    blind = BlindIndex(b"s" * 32)
    eight = blind.fillers("alice", SECURITY, "Observation/o1", 8)
    assert len(set(eight)) == 8 and blind.fillers("alice", SECURITY, "Observation/o1", 3) \
        == eight[:3]
    assert blind.fillers("bob", SECURITY, "Observation/o1", 8)[0] != eight[0]
    assert blind.fillers(None, SECURITY, "Observation/o1", 1)[0] \
        != blind.fillers("alice", SECURITY, "Observation/o1", 1)[0]


# -- the same answers over the API ----------------------------------------------------------


def found(community: Community, query: str, client: str = "clinic-a") -> set[str]:
    r = community.http.get(f"/fhir/{query}", headers=community.headers(client))
    assert r.status_code == 200, (query, r.text)
    return {e["resource"]["id"] for e in r.json().get("entry", [])
            if e["search"]["mode"] == "match"}


def pairs(resource: dict[str, Any]) -> set[tuple[str | None, str]]:
    return {(s.get("system"), s["code"]) for s in resource.get("meta", {}).get("security", [])}


BRUTE = {
    f"_security={ACT}|PSY": lambda p: (ACT, "PSY") in p,
    "_security=PSY": lambda p: any(c == "PSY" for _, c in p),
    f"_security={ACT}|": lambda p: any(s == ACT for s, _ in p),
    f"_security={TEST_DATA}|HTEST": lambda p: (TEST_DATA, "HTEST") in p,
    f"_security:not={ACT}|PSY": lambda p: (ACT, "PSY") not in p,
    f"_security:not={TEST_DATA}|HTEST": lambda p: (TEST_DATA, "HTEST") not in p,
    "_security:missing=true": lambda p: not p,
    "_security:missing=false": lambda p: bool(p),
}


def shown(community: Community, base: str) -> list[dict[str, Any]]:
    r = community.http.get(f"/fhir/{base}?_count=100", headers=community.headers("clinic-a"))
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json()["entry"] if e["search"]["mode"] == "match"]


@pytest.mark.parametrize("query", list(BRUTE))
@pytest.mark.parametrize("base", ["Patient/dan/Observation", "Patient/alice/Observation"])
def test_security_searches_give_the_brute_force_answer(town: Community, base: str,
                                                       query: str) -> None:
    """Each answer is the caller's unfiltered search of one resident's records filtered
    by the labels it shows: dan's (his PSY open, his SUD withheld), alice's (her PSY
    withheld). Across residents the labels withheld are those of the residents a search
    could match, so there the answers are spelled out below."""
    expected = {o["id"] for o in shown(town, base) if BRUTE[query](pairs(o))}
    assert found(town, f"{base}?{query}&_count=100") == expected
    count = town.http.get(f"/fhir/{base}?{query}&_summary=count",
                          headers=town.headers("clinic-a")).json()["total"]
    assert count == len(expected)


def test_the_answers_are_the_ones_they_were(town: Community) -> None:
    """Spelled out. Across clinic-a's residents alice keeps PSY closed, so it is withheld
    from every record; in dan's compartment only his SUD and four-label readings are.
    No one else's record is reached."""
    glucose = {"alice-glu-0", "alice-glu-1", "alice-glu-2", "dan-glu"}
    dan = "Patient/dan/Observation"
    assert found(town, f"Observation?_security={ACT}|PSY") == set()
    assert found(town, f"{dan}?_security={ACT}|PSY") == {"dan-psy", "dan-psy-test"}
    assert found(town, f"{dan}?_security=PSY") == {"dan-psy", "dan-psy-test"}
    assert found(town, f"{dan}?_security={TEST_DATA}|HTEST") == {"dan-psy-test"}
    # only dan's records match, so only the labels he keeps closed are withheld
    assert found(town, f"Observation?_security={TEST_DATA}|HTEST") == {"dan-psy-test"}
    assert found(town, "Observation?_security:missing=false") == set()
    assert found(town, f"{dan}?_security:missing=false") == {"dan-psy", "dan-psy-test"}
    assert found(town, "Observation?_security:missing=true") == glucose
    assert found(town, f"{dan}?_security:missing=true") == {"dan-glu"}
    assert found(town, f"Observation?_security:not={ACT}|PSY") == glucose
    assert found(town, f"{dan}?_security:not={TEST_DATA}|HTEST") == {"dan-glu", "dan-psy"}
    assert found(town, "Observation?_security:missing=true", "clinic-b") == \
        {"bob-glu-0", "bob-glu-1", "bob-glu-2"}
    assert found(town, "Patient/alice/Observation?_security:missing=false") == set()
    assert found(town, "Organization?_security:missing=true") >= {"clinic-a", "clinic-b"}
    assert found(town, "Organization?_security:missing=false") == set()


def test_the_store_tells_which_records_carry_labels(town: Community) -> None:
    repo = town.services.repository
    asked = ["Observation/dan-glu", "Observation/dan-psy", "Observation/dan-many",
             "Observation/alice-psy", "Observation/nobody", "Patient/dan",
             "Organization/clinic-a"]
    assert repo.labelled(asked) == {"Observation/dan-psy", "Observation/dan-many",
                                    "Observation/alice-psy"}


def test_reindexing_writes_the_same_rows(tmp_path: Path) -> None:
    community = build_community(tmp_path)
    try:
        before = security_rows(community)
        community.services.repository.rebuild_indexes()
        assert security_rows(community) == before
        community.services.repository.erase("alice")
        after = security_rows(community)
        assert not [key for key in after if key[1].startswith("alice")]
        assert {len(t) for t in after.values()} == {SECURITY_ROWS}
    finally:
        community.services.engine.dispose()

"""The audit ledger: one entry per call, written before the answer, tamper-evident."""

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from exchange.audit.ledger import GENESIS, chain_hash, leaf_hash
from exchange.errors import AuditUnavailable
from exchange.store.tables import AuditRow
from tests.community import Community


def entries(community: Community) -> list[dict]:
    return list(community.services.ledger.entries())


def test_every_call_writes_exactly_one_entry(community: Community) -> None:
    h = community.headers("clinic-a")
    calls = [
        ("/fhir/Patient/alice", 200, "success"),
        ("/fhir/Patient/bob", 404, "denied"),
        ("/fhir/Patient/nobody", 404, "not-found"),
        ("/fhir/Observation?date=garbage", 400, "refused"),
        ("/fhir/Observation", 200, "success"),
    ]
    for path, status, outcome in calls:
        before = community.services.ledger.size()
        r = community.http.get(path, headers=h)
        assert r.status_code == status
        assert community.services.ledger.size() == before + 1, path
        last = entries(community)[-1]
        assert last["outcome"] == outcome, path
        assert last["status"] == status


def test_entry_records_who_what_whose_why_and_the_decision(community: Community) -> None:
    community.http.get("/fhir/Observation/alice-glu-0", headers=community.headers("clinic-a"))
    entry = entries(community)[-1]
    assert entry["who"] == {"kind": "client", "subject": "clinic-a",
                            "organization": "Organization/clinic-a", "purpose": "TREAT"}
    assert entry["residents"] == ["alice"]
    assert entry["what"]["type"] == "Observation" and entry["what"]["id"] == "alice-glu-0"
    decision = entry["decisions"][0]
    assert decision["allow"] is True
    assert decision["consents"] == ["Consent/alice-treat-a/_history/1"]
    assert decision["policy_revision"] == community.services.decider.revision
    assert entry["network_address"] and entry["request_id"]


def test_denial_is_recorded_with_its_reasons(community: Community) -> None:
    community.http.get("/fhir/Patient/alice", headers=community.headers("clinic-b"))
    entry = entries(community)[-1]
    assert entry["outcome"] == "denied"
    assert entry["decisions"][0]["allow"] is False
    assert "not_consented" in entry["decisions"][0]["reasons"]


def test_refused_tokens_are_recorded(community: Community) -> None:
    before = community.services.ledger.size()
    community.http.get("/fhir/Patient", headers={"Authorization": "Bearer junk"})
    community.request_token("insurer", purpose="TREAT")
    recorded = entries(community)[before:]
    assert [e["action"] for e in recorded] == ["authenticate", "token"]
    assert all(e["outcome"] == "refused" for e in recorded)


def test_search_records_the_residents_disclosed(community: Community) -> None:
    community.http.get("/fhir/Patient", headers=community.resident_headers("bob"))
    assert entries(community)[-1]["residents"] == ["bob"]


def test_no_audit_no_data(community: Community, monkeypatch: pytest.MonkeyPatch) -> None:
    h = community.headers("clinic-a")

    def broken(entry: dict) -> int:
        raise AuditUnavailable()

    monkeypatch.setattr(community.services.ledger, "append", broken)
    r = community.http.get("/fhir/Patient/alice", headers=h)
    assert r.status_code == 503
    assert "秀英" not in r.text and "alice" not in r.text.replace("audit", "")
    assert r.json()["resourceType"] == "OperationOutcome"
    r = community.http.get("/fhir/Observation", headers=h)
    assert r.status_code == 503 and "glu" not in r.text


def _tamper(community: Community, sql: str) -> None:
    path = community.services.settings.data_dir / "exchange.db"
    community.services.engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute(sql)


def test_verify_detects_a_changed_entry(community: Community) -> None:
    for _ in range(4):
        community.http.get("/fhir/Patient/alice", headers=community.headers("clinic-a"))
    assert community.services.ledger.verify().ok
    _tamper(community, "UPDATE audit_entry SET content = CAST(X'00' || substr(content, 2) AS BLOB) "
                       "WHERE seq = 3")
    report = community.services.ledger.verify()
    assert not report.ok and report.first_bad == 3 and "changed" in (report.problem or "")


def test_verify_detects_removed_and_reordered_entries(community: Community) -> None:
    for _ in range(3):
        community.http.get("/fhir/Patient/alice", headers=community.headers("clinic-a"))
    size = community.services.ledger.size()
    _tamper(community, "DELETE FROM audit_entry WHERE seq = 2")
    report = community.services.ledger.verify()
    assert not report.ok and report.first_bad == 2 and "removed" in (report.problem or "")
    # Swap the payloads (with their digests) of two later entries: a reordering.
    _tamper(community, f"UPDATE audit_entry SET seq = -1 WHERE seq = {size}")
    _tamper(community, f"UPDATE audit_entry SET seq = {size} WHERE seq = {size - 1}")
    _tamper(community, f"UPDATE audit_entry SET seq = {size - 1} WHERE seq = -1")
    _tamper(community, "INSERT INTO audit_entry SELECT 2, recorded_at, leaf, chain, content "
                       "FROM audit_entry WHERE seq = 1")
    report = community.services.ledger.verify()
    assert not report.ok and report.first_bad == 2


def test_audit_rows_hold_no_plaintext(community: Community) -> None:
    community.http.get("/fhir/Patient", params={"name": "王秀英"},
                       headers=community.headers("clinic-a"))
    assert "王秀英" in entries(community)[-1]["request"]["query"] or \
        "%E7%8E%8B" in entries(community)[-1]["request"]["query"]
    raw = community.raw_db()
    assert "王秀英".encode() not in raw and b"%E7%8E%8B" not in raw


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=30),
       st.data())
def test_chain_property_any_single_change_is_located(contents: list[bytes],
                                                     data: st.DataObject) -> None:
    """Recompute a chain over arbitrary contents; flipping any byte of any entry changes
    that entry's link and leaves every earlier link unchanged."""
    def links(items: list[bytes]) -> list[bytes]:
        out, prev = [], GENESIS
        for seq, item in enumerate(items, start=1):
            prev = chain_hash(prev, seq, leaf_hash(item))
            out.append(prev)
        return out

    original = links(contents)
    index = data.draw(st.integers(0, len(contents) - 1))
    position = data.draw(st.integers(0, len(contents[index]) - 1))
    changed = list(contents)
    item = bytearray(changed[index])
    item[position] ^= data.draw(st.integers(1, 255))
    changed[index] = bytes(item)
    tampered = links(changed)
    assert tampered[:index] == original[:index]
    assert all(a != b for a, b in zip(tampered[index:], original[index:], strict=True))


def test_chain_binds_the_sequence_number() -> None:
    leaf = leaf_hash(b"entry")
    assert chain_hash(GENESIS, 1, leaf) != chain_hash(GENESIS, 2, leaf)


def test_orm_update_of_ledger_is_detected(community: Community) -> None:
    community.http.get("/fhir/Patient/alice", headers=community.headers("clinic-a"))
    with community.services.engine.begin() as conn:
        conn.execute(update(AuditRow).where(AuditRow.seq == 1)  # type: ignore[arg-type]
                     .values(leaf="00" * 32))
    assert community.services.ledger.verify().first_bad == 1

"""The audit ledger: one entry per call, written before the answer, tamper-evident."""

import sqlite3

import pytest

from consent.model import build_consent
from exchange.audit.checkpoint import Checkpoint, CheckpointError
from exchange.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from exchange.errors import AuditUnavailable
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
    assert entry["who"] == {"kind": "client", "subject": "clinic-a", "role": "clinic",
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


def test_a_search_touching_several_residents_yields_one_entry_each(
        community: Community) -> None:
    community.http.post("/fhir/Consent", json=build_consent("carol", "Organization/clinic-a",
                                                            ["TREAT"]),
                        headers=community.resident_headers("carol"))
    before = community.services.ledger.size()
    community.http.get("/fhir/Observation", headers=community.headers("clinic-a"))
    recorded = entries(community)[before + 1:]  # the token issue comes first
    assert sorted(e["residents"][0] for e in recorded) == ["alice", "carol"]
    assert len({e["request_id"] for e in recorded}) == 1


def test_concurrent_appends_are_all_durable_and_ordered(community: Community) -> None:
    import threading

    ledger = community.services.ledger
    before = ledger.size()
    seqs: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(20):
            s = ledger.append({"action": "test", "worker": n, "i": i})
            with lock:
                seqs.append(s)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seqs) == list(range(before + 1, before + 121))
    assert ledger.verify().ok


def test_no_audit_no_data(community: Community, monkeypatch: pytest.MonkeyPatch) -> None:
    h = community.headers("clinic-a")

    def broken(entries: list) -> list:
        raise AuditUnavailable()

    monkeypatch.setattr(community.services.ledger, "append_many", broken)
    r = community.http.get("/fhir/Patient/alice", headers=h)
    assert r.status_code == 503
    assert "秀英" not in r.text and "alice" not in r.text.replace("audit", "")
    assert r.json()["resourceType"] == "OperationOutcome"
    r = community.http.get("/fhir/Observation", headers=h)
    assert r.status_code == 503 and "glu" not in r.text


def _tamper(community: Community, *statements: str) -> None:
    path = community.services.settings.data_dir / "exchange.db"
    community.services.engine.dispose()
    with sqlite3.connect(path) as conn:
        for sql in statements:
            conn.execute(sql)


def _witnessed(community: Community, calls: int = 6) -> Checkpoint:
    """Some traffic, then a checkpoint a compliance officer exports and keeps."""
    for _ in range(calls):
        community.http.get("/fhir/Patient/alice", headers=community.headers("clinic-a"))
    note = community.services.ledger.checkpoint().note
    witness = community.services.ledger.open_checkpoint(note)
    for _ in range(2):
        community.http.get("/fhir/Patient/alice", headers=community.headers("clinic-a"))
    report = community.services.ledger.verify(witness=witness)
    assert report.ok, report
    return witness


def test_verify_names_a_changed_entry(community: Community) -> None:
    witness = _witnessed(community)
    _tamper(community, "UPDATE audit_entry SET content = CAST(X'00' || substr(content, 2) "
                       "AS BLOB) WHERE seq = 3")
    report = community.services.ledger.verify(witness=witness)
    assert not report.ok and report.first_bad == 3 and "changed" in (report.problem or "")


def test_changed_entry_with_rewritten_leaves_still_breaks_the_checkpoint(
        community: Community) -> None:
    """The attacker recomputes the leaf and the level-0 node; the signed root remembers."""
    witness = _witnessed(community)
    ledger = community.services.ledger
    content = ledger.read(2)
    assert content is not None
    forged = ledger._vault.seal("_audit", ("audit", "2"), b'{"forged": true}')
    leaf = leaf_hash(forged).hex()
    _tamper(community,
            f"UPDATE audit_entry SET content = X'{forged.hex()}', leaf = '{leaf}' WHERE seq = 2",
            f"UPDATE audit_node SET hash = '{leaf}' WHERE level = 0 AND \"index\" = 1")
    report = ledger.verify(witness=witness)
    # The subtree over entries 1 and 2 is recomputed and differs: found at entry 2.
    assert not report.ok and report.first_bad == 2 and "audit_node level 1 index 0" in (
        report.problem or "")


def test_verify_detects_a_deleted_entry(community: Community) -> None:
    witness = _witnessed(community)
    _tamper(community, "DELETE FROM audit_entry WHERE seq = 2")
    report = community.services.ledger.verify(witness=witness)
    assert not report.ok and report.first_bad == 2 and "removed" in (report.problem or "")


def test_verify_detects_reordered_entries(community: Community) -> None:
    witness = _witnessed(community)
    # Swap two entries whole (content and leaf), keeping the sequence numbers dense.
    _tamper(community, "UPDATE audit_entry SET seq = -1 WHERE seq = 3",
            "UPDATE audit_entry SET seq = 3 WHERE seq = 4",
            "UPDATE audit_entry SET seq = 4 WHERE seq = -1")
    report = community.services.ledger.verify(witness=witness)
    assert not report.ok and report.first_bad == 3


def test_verify_detects_an_inserted_entry(community: Community) -> None:
    witness = _witnessed(community)
    size = community.services.ledger.size()
    _tamper(community, *(f"UPDATE audit_entry SET seq = seq + 1 WHERE seq = {s}"
                         for s in range(size, 2, -1)),
            "INSERT INTO audit_entry (seq, recorded_at, leaf, content) "
            "SELECT 3, recorded_at, leaf, content FROM audit_entry WHERE seq = 2")
    report = community.services.ledger.verify(witness=witness)
    assert not report.ok and report.first_bad is not None and report.first_bad <= 3


def test_verify_detects_truncation(community: Community) -> None:
    witness = _witnessed(community)
    _tamper(community, f"DELETE FROM audit_entry WHERE seq > {witness.size - 2}",
            f"DELETE FROM audit_node WHERE \"index\" >= {witness.size - 2} AND level = 0",
            "DELETE FROM audit_checkpoint")
    report = community.services.ledger.verify(witness=witness)
    assert not report.ok and "truncated" in (report.problem or "")


def test_verify_detects_a_fork_after_the_witnessed_checkpoint(community: Community) -> None:
    """A whole history rewritten consistently, checkpoints dropped: the witness still knows."""
    witness = _witnessed(community)
    ledger = community.services.ledger
    entries = [ledger.read(seq) for seq in range(1, ledger.size() + 1)]
    statements = ["DELETE FROM audit_entry", "DELETE FROM audit_node",
                  "DELETE FROM audit_checkpoint"]
    _tamper(community, *statements)
    for entry in entries:
        assert entry is not None
        entry.pop("seq")
        entry["outcome"] = "rewritten"
        ledger.append(entry)
    report = ledger.verify(witness=witness)
    assert not report.ok and "fork" in (report.problem or "")


def test_checkpoints_are_signed_and_never_inconsistent(community: Community) -> None:
    ledger = community.services.ledger
    community.http.get("/fhir/Patient/alice", headers=community.headers("clinic-a"))
    first = ledger.checkpoint()
    assert ledger.open_checkpoint(first.note) == first.checkpoint
    lines = first.note.split("\n")
    lines[1] = str(int(lines[1]) + 1)  # claim one more entry than was signed
    with pytest.raises(CheckpointError):
        ledger.open_checkpoint("\n".join(lines))
    community.http.get("/fhir/Patient/alice", headers=community.headers("clinic-a"))
    # Rewrite an already checkpointed entry, then ask for a new checkpoint: refused.
    _tamper(community, "UPDATE audit_node SET hash = '" + "11" * 32 + "' WHERE \"index\" = 0")
    with pytest.raises(AuditUnavailable):
        ledger.checkpoint()


def test_a_checkpoint_is_signed_at_least_once_a_minute(community: Community) -> None:
    ledger = community.services.ledger
    headers = community.headers("clinic-a")
    community.http.get("/fhir/Patient/alice", headers=headers)
    before = len(ledger.checkpoints())
    community.http.get("/fhir/Patient/alice", headers=headers)
    assert len(ledger.checkpoints()) == before  # within the minute: none
    community.clock.advance(seconds=61)
    community.http.get("/fhir/Patient/alice", headers=community.headers("clinic-a"))
    assert len(ledger.checkpoints()) == before + 1


def test_inclusion_proof_of_a_real_entry(community: Community) -> None:
    for _ in range(5):
        community.http.get("/fhir/Patient/alice", headers=community.headers("clinic-a"))
    ledger = community.services.ledger
    signed = ledger.checkpoint()
    size, root = signed.checkpoint.size, signed.checkpoint.root
    for seq in (1, 3, size):
        leaf = ledger.leaf(seq)
        assert leaf is not None
        verify_inclusion(seq - 1, size, leaf, ledger.inclusion_proof(seq, size), root)
    old = ledger.checkpoints()[0].checkpoint
    verify_consistency(old.size, size, old.root, root,
                       ledger.consistency_proof(old.size, size))


def test_audit_rows_hold_no_plaintext(community: Community) -> None:
    community.http.get("/fhir/Patient", params={"name": "王秀英"},
                       headers=community.headers("clinic-a"))
    # The entry keeps the question, not the name (exchange/privacy/request_scrub.py).
    assert entries(community)[-1]["request"]["query"] == "name=[withheld]"
    raw = community.raw_db()
    assert "王秀英".encode() not in raw and b"%E7%8E%8B" not in raw


def test_verify_from_a_trusted_checkpoint(community: Community) -> None:
    witness = _witnessed(community)
    ledger = community.services.ledger
    report = ledger.verify(start=witness)
    assert report.ok and report.checked == ledger.size()
    _tamper(community, "UPDATE audit_entry SET content = CAST(X'00' || substr(content, 2) "
                       f"AS BLOB) WHERE seq = {witness.size + 1}")
    report = ledger.verify(start=witness)
    assert not report.ok and report.first_bad == witness.size + 1
    # Stored subtrees doctored under the trusted checkpoint: starting there is refused.
    _tamper(community, "UPDATE audit_node SET hash = '" + "22" * 32 + "' WHERE \"index\" = 0")
    assert not ledger.verify(start=witness).ok


def test_a_residents_entry_names_no_other_residents_consents(community: Community) -> None:
    """A page that shows one resident's records was decided for every resident it could
    reach: those other decisions, and their consents, are kept for the compliance officer
    in an entry of no resident, never in the one resident's own history."""
    community.http.post("/fhir/Consent", json=build_consent("carol", "Organization/clinic-a",
                                                            ["TREAT"]),
                        headers=community.resident_headers("carol"))
    before = community.services.ledger.size()
    page = community.http.get("/fhir/Observation?_count=1&_sort=_id",
                              headers=community.headers("clinic-a")).json()
    shown = page["entry"][0]["resource"]["subject"]["reference"].split("/")[1]
    other = ({"alice", "carol"} - {shown}).pop()
    recorded = entries(community)[before + 1:]  # the token issue comes first
    mine = [e for e in recorded if e["residents"] == [shown]]
    assert len(mine) == 1
    named = {c for d in mine[0]["decisions"] for c in d["consents"]}
    assert named and all(c.startswith(f"Consent/{shown}-") or shown in c for c in named)
    kept = [e for e in recorded if e["residents"] == []]
    assert any(d["input"]["resident"] == other for e in kept for d in e["decisions"])
    history = community.http.get("/resident/access-history",
                                 headers=community.resident_headers(shown)).json()
    for item in history["items"]:
        assert all(shown in c for c in item["consents"]), item["consents"]
    events = community.http.get("/fhir/AuditEvent?_count=500",
                                headers=community.resident_headers(shown)).text
    assert other not in events

"""The audit trail's views, across the HTTP API: who may read them and what they show."""

import base64
from datetime import UTC, datetime

from cryptography.hazmat.primitives.serialization import load_pem_public_key

from consent.model import build_consent
from exchange.audit.checkpoint import open_note
from exchange.audit.merkle import leaf_hash, verify_inclusion
from exchange.fhir.validation import validate_resource
from tests.community import Community


def officer(community: Community) -> dict[str, str]:
    return community.headers("office", "HCOMPL", "system/AuditEvent.rs")


def traffic(community: Community) -> None:
    community.http.get("/fhir/Patient/alice", headers=community.headers("clinic-a"))
    community.http.get("/fhir/Patient/alice", headers=community.headers("clinic-b"))
    community.http.get("/fhir/Claim", headers=community.headers("insurer", "HPAYMT"))


def test_audit_events_are_balp_and_searchable(community: Community) -> None:
    traffic(community)
    h = officer(community)
    bundle = community.http.get("/fhir/AuditEvent", params={"patient": "alice"},
                                headers=h).json()
    assert bundle["total"] == 2
    for entry in bundle["entry"]:
        event = validate_resource(entry["resource"])
        agents = {a["type"]["coding"][0]["code"] for a in event["agent"]}
        assert {"110153", "110152", "IRCP"} <= agents
        assert {"reference": "Patient/alice"} in [e.get("what") for e in event["entity"]]
    outcomes = sorted(e["resource"]["outcome"] for e in bundle["entry"])
    assert outcomes == ["0", "4"]  # clinic A was given, clinic B refused
    by_org = community.http.get("/fhir/AuditEvent", params={"agent": "Organization/insurer"},
                                headers=h).json()
    assert by_org["total"] >= 1
    assert all(e["resource"]["agent"][2]["who"]["reference"] == "Organization/insurer"
               for e in by_org["entry"])
    denied = community.http.get("/fhir/AuditEvent", params={"outcome": "4", "purpose": "TREAT"},
                                headers=h).json()
    assert denied["total"] >= 1
    today = datetime.now(UTC).date().isoformat()
    assert community.http.get("/fhir/AuditEvent", params={"date": f"ge{today}"},
                              headers=h).json()["total"] >= 3
    assert community.http.get("/fhir/AuditEvent", params={"date": "lt2000"},
                              headers=h).json()["total"] == 0
    page = community.http.get("/fhir/AuditEvent", params={"_count": "1"}, headers=h).json()
    assert len(page["entry"]) == 1 and any(k["relation"] == "next" for k in page["link"])
    assert community.http.get("/fhir/AuditEvent", params={"who": "x"},
                              headers=h).status_code == 400


def test_reading_the_audit_trail_is_itself_audited(community: Community) -> None:
    h = officer(community)
    community.http.get("/fhir/AuditEvent", headers=h)
    last = list(community.services.ledger.entries())[-1]
    assert last["action"] == "audit-read" and last["who"]["role"] == "compliance"


def test_only_oversight_reads_the_trail(community: Community) -> None:
    traffic(community)
    wide = community.headers("clinic-a", scope="system/*.rs")
    for path in ("/fhir/AuditEvent", "/compliance/summary", "/compliance/integrity",
                 "/compliance/anomalies", "/compliance/audit-events.ndjson"):
        r = community.http.get(path, headers=wide)
        assert r.status_code == 403, path
        assert "alice" not in r.text
    # Even a token that names the audit trail in its scopes gets nothing: the policy decides.
    named = community.headers("clinic-a", scope="system/AuditEvent.rs")
    assert community.http.get("/fhir/AuditEvent", headers=named).status_code == 403


def test_resident_sees_only_their_own_entries(community: Community) -> None:
    traffic(community)
    me = community.resident_headers("bob")
    mine = community.http.get("/fhir/AuditEvent", headers=me).json()
    assert mine["total"] >= 1
    assert all({"reference": "Patient/bob"} in [x.get("what") for x in e["resource"]["entity"]]
               for e in mine["entry"])
    assert community.http.get("/fhir/AuditEvent", params={"patient": "alice"},
                              headers=me).status_code == 403
    assert community.http.get("/compliance/summary", headers=me).status_code == 403


def test_ndjson_export(community: Community) -> None:
    traffic(community)
    r = community.http.get("/compliance/audit-events.ndjson", headers=officer(community))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/fhir+ndjson")
    lines = r.text.strip().splitlines()
    assert len(lines) >= 3
    import json

    assert all(json.loads(line)["resourceType"] == "AuditEvent" for line in lines)


def test_summary_counts_disclosures_and_denials(community: Community) -> None:
    traffic(community)
    body = community.http.get("/compliance/summary", headers=officer(community)).json()
    orgs = {row["organization"] for row in body["disclosures_per_organization_per_day"]}
    assert {"Organization/clinic-a", "Organization/insurer"} <= orgs
    assert body["disclosures_per_purpose"]["TREAT"] >= 1
    assert body["denials_per_organization"]["Organization/clinic-b"] >= 1


def test_anomalies_flag_break_glass_night_access_and_denial_bursts(
        community: Community) -> None:
    # Midnight in Hangzhou.
    community.clock.at = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)
    h = community.headers("clinic-a", "ETREAT")
    community.http.post("/fhir/Consent", json=build_consent(
        "carol", "Organization/clinic-a", ["ETREAT"]),
        headers=community.resident_headers("carol"))
    assert community.http.get("/fhir/Patient/carol", headers=h).status_code == 200
    b = community.headers("clinic-b")
    for _ in range(12):
        community.http.get("/fhir/Patient/alice", headers=b)
    flags = community.http.get("/compliance/anomalies", params={"days": 3},
                               headers=officer(community)).json()["flags"]
    kinds = {f["kind"] for f in flags}
    assert {"break_glass", "unusual_hours", "denial_burst"} <= kinds
    burst = next(f for f in flags if f["kind"] == "denial_burst")
    assert burst["organization"] == "Organization/clinic-b" and burst["count"] >= 10


def test_integrity_status_and_witness(community: Community) -> None:
    traffic(community)
    h = officer(community)
    exported = community.services.ledger.checkpoint()
    community.services.ledger.mark_exported(exported.checkpoint.size)
    traffic(community)
    assert community.http.post("/compliance/verify", headers=h).json()["ok"] is True
    status = community.http.get("/compliance/integrity", headers=h).json()
    assert status["size"] > exported.checkpoint.size
    assert status["last_verification"]["ok"] is True
    assert status["last_exported_witness"] == {
        "size": exported.checkpoint.size, "exported_at": status["last_exported_witness"][
            "exported_at"], "consistent": True}


def test_access_history_in_plain_words_with_proofs(small_k_community: Community) -> None:
    community = small_k_community
    community.http.post("/fhir/Consent", json=build_consent(
        "alice", "Organization/hub", ["CAREMGT"], classes=["Patient"]),
        headers=community.resident_headers("alice"))
    community.http.get("/fhir/Patient/alice", headers=community.headers("clinic-a"))
    community.http.get("/fhir/Patient", headers=community.headers("hub", "CAREMGT"))
    r = community.http.get("/resident/access-history", headers=community.resident_headers("alice"))
    assert r.status_code == 200
    body = r.json()
    items = body["items"]
    assert any("治疗" in i["text"]["zh"] and "treatment" in i["text"]["en"] for i in items)
    assert any(i["released_to_hub"] for i in items)
    assert any({"code": "consent_permit", "en": "The resident's consent allowed it.",
                "zh": "居民的同意书允许此次访问。"} in i["why"] for i in items)
    key = load_pem_public_key(community.http.get("/.well-known/audit-log-key.pem").content)
    for item in items:
        proof = item["proof"]
        checkpoint = open_note(proof["checkpoint"], key)  # type: ignore[arg-type]
        leaf = leaf_hash(base64.b64decode(proof["ciphertext"]))
        assert leaf.hex() == proof["leaf_hash"]
        verify_inclusion(proof["leaf_index"], checkpoint.size, leaf,
                         [bytes.fromhex(p) for p in proof["path"]], checkpoint.root)
    # Another resident's history holds none of these, and clients have none at all.
    other = community.http.get("/resident/access-history",
                               headers=community.resident_headers("carol")).json()
    assert other["items"] == []
    assert community.http.get("/resident/access-history",
                              headers=community.headers("clinic-a")).status_code == 403


VIEWS = [("get", "/fhir/AuditEvent"), ("get", "/compliance/audit-events.ndjson"),
         ("get", "/compliance/summary"), ("get", "/compliance/anomalies"),
         ("get", "/compliance/integrity"), ("post", "/compliance/verify"),
         ("get", "/compliance/replay/1")]


def test_every_view_of_the_trail_travels_the_road(community: Community) -> None:
    """Each view is decided for the officer and recorded once, allowed or denied, and the
    entry renders as BALP's "Audit Log Used"."""
    traffic(community)
    ledger = community.services.ledger
    for who, expected in ((officer(community), "success"),
                          (community.headers("clinic-a", scope="system/*.rs"), "denied")):
        for method, path in VIEWS:
            before = ledger.size()
            r = community.http.request(method, path, headers=who)
            assert r.status_code == (200 if expected == "success" else 403), (path, r.text)
            assert ledger.size() == before + 1, path
            entry = ledger.read(ledger.size())
            assert entry is not None
            assert (entry["action"], entry["outcome"]) == ("audit-read", expected), path
            assert entry["decisions"], path  # the policy was asked
    events = community.http.get("/fhir/AuditEvent?_count=500",
                                headers=officer(community)).json()["entry"]
    used = [e["resource"] for e in events
            if e["resource"]["type"].get("code") == "110101"]
    assert len(used) >= 2 * len(VIEWS)
    assert all(u["type"]["display"] == "Audit Log Used" for u in used)


def test_a_residents_history_names_no_other_residents_consents(
        small_k_community: Community) -> None:
    community = small_k_community
    consent = build_consent("carol", "Organization/clinic-a", ["TREAT"],
                            when=community.clock.now())
    created = community.http.post("/fhir/Consent", json=consent,
                                  headers=community.resident_headers("carol"))
    assert created.status_code == 201
    carols = created.json()["id"]
    # One search that discloses both alice's and carol's records.
    found = community.http.get("/fhir/Observation?code=15074-8",
                               headers=community.headers("clinic-a")).json()
    subjects = {e["resource"]["subject"]["reference"] for e in found["entry"]}
    assert subjects == {"Patient/alice", "Patient/carol"}
    for resident, other in (("alice", carols), ("carol", "alice-treat-a")):
        history = community.http.get("/resident/access-history",
                                     headers=community.resident_headers(resident)).json()
        searched = [i for i in history["items"] if i["what"] == "Observation"]
        assert searched, resident
        named = {c for i in history["items"] for c in i["consents"]}
        assert named and not any(other in c for c in named), (resident, named)
        events = community.http.get("/fhir/AuditEvent",
                                    headers=community.resident_headers(resident)).text
        assert other not in events


def test_an_out_of_range_entry_number_is_a_recorded_404(community: Community) -> None:
    h = officer(community)
    ledger = community.services.ledger
    for seq in ("0", "-1", str(2 ** 63), str(2 ** 64), "9" * 40):
        before = ledger.size()
        r = community.http.get(f"/compliance/replay/{seq}", headers=h)
        assert r.status_code == 404, (seq, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
        entry = ledger.read(before + 1)
        assert entry is not None and entry["outcome"] == "not-found"

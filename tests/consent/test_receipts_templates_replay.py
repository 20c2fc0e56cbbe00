"""Consent receipts, templates, replay of past decisions, and the what-if preview."""

import json
import shutil
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_public_key

from consent.model import build_consent
from consent.receipts import ReceiptError, verify_receipt
from exchange.app import build_services, create_app
from exchange.config import Settings
from tests.community import Community


def test_grant_and_revocation_receipts_verify_offline(community: Community) -> None:
    me = community.resident_headers("carol")
    r = community.http.post("/consent/templates/family-clinic/$instantiate",
                            json={"resident": "carol", "organization": "Organization/clinic-a",
                                  "exclude": ["Condition"]})
    assert r.status_code == 200, r.text
    created = community.http.post("/fhir/Consent", json=r.json(), headers=me)
    assert created.status_code == 201
    cid = created.json()["id"]
    key = load_pem_public_key(
        community.http.get("/.well-known/exchange-signing-key.pem").content)
    grant = community.http.get(f"/fhir/Consent/{cid}/$receipt", headers=me).json()
    verify_receipt(grant, key)  # type: ignore[arg-type]
    assert grant["action"] == "grant" and grant["resident"] == "Patient/carol"
    assert grant["recipients"] == ["Organization/clinic-a"]
    assert grant["purposes"] == ["ETREAT", "TREAT"]
    assert grant["template"] == {"id": "family-clinic", "version": "1"}
    assert grant["exceptions"] == [{"decision": "deny", "data_classes": ["Condition"],
                                    "purposes": []}]
    assert grant["policy_revision"] == community.services.decider.revision
    assert community.http.delete(f"/fhir/Consent/{cid}", headers=me).status_code == 204
    revoke = community.http.get(f"/fhir/Consent/{cid}/_history/2/$receipt", headers=me).json()
    verify_receipt(revoke, key)  # type: ignore[arg-type]
    assert revoke["action"] == "revoke"
    forged = {**revoke, "purposes": ["HPAYMT"]}
    try:
        verify_receipt(forged, key)  # type: ignore[arg-type]
        raise AssertionError("a changed receipt verified")
    except ReceiptError:
        pass
    # Nobody else gets Carol's receipts.
    assert community.http.get(f"/fhir/Consent/{cid}/$receipt",
                              headers=community.resident_headers("alice")).status_code == 404


def test_templates_speak_chinese_and_english(community: Community) -> None:
    templates = community.http.get("/consent/templates").json()
    assert {t["id"] for t in templates} == {"family-clinic", "insurer-claims",
                                            "hub-care-needs", "research-anonymous"}
    for t in templates:
        assert t["title"]["zh"] and t["title"]["en"] and t["text"]["zh"] and t["text"]["en"]
    bad = community.http.post("/consent/templates/family-clinic/$instantiate",
                              json={"resident": "carol"})
    assert bad.status_code == 400
    hub = community.http.post("/consent/templates/hub-care-needs/$instantiate",
                              json={"resident": "carol"}).json()
    assert hub["provision"]["extension"][0]["valueCode"] == "pseudonymized"


def test_what_if_preview(community: Community) -> None:
    me = community.resident_headers("carol")
    draft = community.http.post("/consent/templates/insurer-claims/$instantiate",
                                json={"resident": "carol"}).json()
    r = community.http.post("/resident/consents/$preview", json=draft, headers=me)
    assert r.status_code == 200, r.text
    (change,) = r.json()["changes"]
    assert change["client"] == "insurer" and change["now"]["types"] == []
    assert "Claim" in change["with_draft"]["types"]
    assert "医保" in change["text"]["zh"] and "insurance" in change["text"]["en"]
    # Nothing was granted by previewing.
    assert community.http.get("/fhir/Claim/carol-claim", headers=community.headers(
        "insurer", "HPAYMT")).status_code == 404
    # Nobody previews for someone else.
    assert community.http.post("/resident/consents/$preview", json=draft,
                               headers=community.resident_headers("alice")).status_code == 403


def test_replay_of_100_past_decisions_after_new_consents_and_a_policy_change(
        community: Community, tmp_path: Path) -> None:
    readers = [("clinic-a", "TREAT"), ("clinic-b", "TREAT"), ("insurer", "HPAYMT")]
    paths = ["/fhir/Patient/alice", "/fhir/Patient/bob", "/fhir/Observation/alice-glu-1",
             "/fhir/Claim/bob-claim", "/fhir/Condition/carol-htn"]
    for i in range(100):
        client, purpose = readers[i % 3]
        community.http.get(paths[i % 5], headers=community.headers(client, purpose))
    # More consents land ...
    community.http.post("/fhir/Consent", json=build_consent("carol", "Organization/clinic-b",
                                                            ["TREAT"]),
                        headers=community.resident_headers("carol"))
    consent = community.http.get("/fhir/Consent/alice-treat-a",
                                 headers=community.resident_headers("alice")).json()
    consent["status"] = "inactive"
    community.http.put("/fhir/Consent/alice-treat-a", json=consent,
                       headers=community.resident_headers("alice"))
    # ... and the policy changes: treatment may now see claims.
    policies = tmp_path / "policies"
    shutil.copytree(Settings().policy_dir, policies)
    data_file = policies / "exchange" / "static" / "data.json"
    data = json.loads(data_file.read_text())
    data["purposes"]["TREAT"]["fields"]["Claim"] = ["*"]
    data_file.write_text(json.dumps(data))
    services = build_services(Settings(data_dir=community.services.settings.data_dir,
                                       base_url="http://testserver", policy_dir=policies),
                              clock=community.clock)
    assert services.decider.revision != community.services.decider.revision
    from fastapi.testclient import TestClient

    TestClient(create_app(services=services)).get(
        "/fhir/Claim/bob-claim", headers={"Authorization": "Bearer " + services.tokens.issue(
            services.registry.get("clinic-b"), ["system/*.rs"], "TREAT")["access_token"]})
    replayed, differing = 0, 0
    for seq in range(1, services.ledger.size() + 1):
        entry = services.ledger.read(seq)
        assert entry is not None
        if not any("input" in d for d in entry.get("decisions", [])):
            continue
        for result in services.replayer.replay(entry):
            replayed += 1
            differing += not result["same"]
    assert replayed >= 100 and differing == 0
    revisions = {d["policy_revision"] for s in range(1, services.ledger.size() + 1)
                 for d in (services.ledger.read(s) or {}).get("decisions", [])}
    assert len(revisions) == 2
    services.engine.dispose()


def test_a_receipt_names_the_categories_a_consent_opens_and_excepts(
        community: Community) -> None:
    me = community.resident_headers("carol")
    vitals = ("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")
    labs = ("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory")
    consent = build_consent("carol", "Organization/clinic-a", ["TREAT"],
                            classes=["Patient"], categories=[vitals],
                            except_categories=[labs])
    cid = community.http.post("/fhir/Consent", json=consent, headers=me).json()["id"]
    receipt = community.http.get(f"/fhir/Consent/{cid}/$receipt", headers=me).json()
    assert receipt["data_classes"] == ["Patient", "|".join(vitals)]
    assert receipt["exceptions"][0]["data_classes"] == ["|".join(labs)]

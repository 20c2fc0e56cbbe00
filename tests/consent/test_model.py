"""The consent model across the HTTP API: adversarial tests for each rule."""

from datetime import timedelta
from urllib.parse import quote

from consent.model import build_consent
from consent.proxies import build_proxy
from tests.community import Community, condition


def grant(community: Community, pid: str, consent: dict) -> str:
    r = community.http.post("/fhir/Consent", json=consent,
                            headers=community.resident_headers(pid))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_any_clinic_consent_opens_every_clinic_but_no_other_kind(community: Community) -> None:
    grant(community, "carol", build_consent("carol", None, ["TREAT"],
                                            organization_kind="clinic"))
    for clinic in ("clinic-a", "clinic-b"):
        assert community.http.get("/fhir/Patient/carol",
                                  headers=community.headers(clinic)).status_code == 200
    assert community.http.get("/fhir/Patient/carol", headers=community.headers(
        "insurer", "HPAYMT")).status_code == 404


def test_sensitive_diagnosis_is_labelled_on_the_way_in_and_needs_its_own_provision(
        community: Community) -> None:
    h = community.headers("clinic-a", scope="system/*.cruds")
    created = community.http.post("/fhir/Condition",
                                  json=condition("x", "alice", "F32.9", "2024-05-01"),
                                  headers=h)
    assert created.status_code == 201
    cid = created.json()["id"]
    labels = created.json()["meta"]["security"]
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "PSY"} in labels
    # The general treatment permit does not open mental health ...
    assert community.http.get(f"/fhir/Condition/{cid}", headers=h).status_code == 404
    search = community.http.get("/fhir/Condition", headers=h).json()
    assert cid not in str(search)
    # ... a provision that names it does.
    grant(community, "alice", build_consent("alice", "Organization/clinic-a", ["TREAT"],
                                            labels=["PSY"]))
    assert community.http.get(f"/fhir/Condition/{cid}", headers=h).status_code == 200
    # Hypertension was never sensitive.
    plain = community.http.post("/fhir/Condition",
                                json=condition("y", "alice", "I10", "2024-05-01"), headers=h)
    assert "security" not in plain.json()["meta"]


def test_pseudonymized_only_consent_is_honoured(small_k_community: Community) -> None:
    community = small_k_community
    grant(community, "carol", build_consent("carol", "Organization/clinic-b", ["TREAT"],
                                            form="pseudonymized"))
    r = community.http.get("/fhir/Patient", headers=community.headers("clinic-b"))
    matches = [e["resource"] for e in r.json()["entry"] if e["search"]["mode"] == "match"]
    ids = {p["id"] for p in matches}
    assert "bob" in ids  # identified under Bob's own consent
    others = [p for p in matches if p["id"] != "bob"]
    assert len(others) == 1 and "name" not in others[0]
    assert others[0]["identifier"][0]["value"].startswith("siv.")


def test_a_lone_pseudonymized_resident_is_suppressed_by_the_guard(
        community: Community) -> None:
    grant(community, "carol", build_consent("carol", "Organization/clinic-b", ["TREAT"],
                                            form="pseudonymized"))
    r = community.http.get("/fhir/Patient", headers=community.headers("clinic-b"))
    body = r.json()
    ids = {e["resource"].get("id") for e in body["entry"] if e["search"]["mode"] == "match"}
    assert ids == {"bob"} and body["total"] == 1
    (outcome,) = [e["resource"] for e in body["entry"] if e["search"]["mode"] == "outcome"]
    assert "k-anonymity k=11" in outcome["issue"][0]["details"]["text"]
    assert "suppressed 1 of 1" in outcome["issue"][0]["details"]["text"]


def test_break_glass_needs_a_reason_and_is_flagged(community: Community) -> None:
    h = community.headers("clinic-a", "ETREAT")
    assert community.http.get("/fhir/Patient/carol", headers=h).status_code == 404
    reason = "患者昏迷，需查过敏史 unconscious, allergy check"
    r = community.http.get("/fhir/Patient/carol",
                           headers={**h, "X-Break-Glass-Reason": quote(reason)})
    assert r.status_code == 200
    entry = list(community.services.ledger.entries())[-1]
    assert entry["details"]["break_glass"] == reason
    history = community.http.get("/resident/access-history",
                                 headers=community.resident_headers("carol")).json()
    flagged = [i for i in history["items"] if i["emergency_access"] and i["outcome"] == "success"]
    assert flagged and flagged[0]["emergency_reason"] == reason


def test_break_glass_respects_the_residents_opt_out(community: Community) -> None:
    grant(community, "carol", build_consent("carol", None, ["ETREAT"], provision_type="deny"))
    h = community.headers("clinic-a", "ETREAT")
    r = community.http.get("/fhir/Patient/carol",
                           headers={**h, "X-Break-Glass-Reason": "unconscious, allergy check"})
    assert r.status_code == 404


def test_proxy_acts_within_the_delegation_and_is_recorded_as_themself(
        community: Community) -> None:
    me = community.resident_headers("bob")
    son = community.http.post("/fhir/RelatedPerson",
                              json=build_proxy("bob", "李", "明", "SON", ["consent"]),
                              headers=me)
    assert son.status_code == 201, son.text
    proxy = {"Authorization": "Bearer " + community.services.tokens.issue_proxy(
        son.json()["id"])}
    created = community.http.post("/fhir/Consent", json=build_consent(
        "bob", "Organization/clinic-a", ["TREAT"]), headers=proxy)
    assert created.status_code == 201
    entry = list(community.services.ledger.entries())[-1]
    assert entry["who"]["kind"] == "proxy" and entry["who"]["acting_for"] == "bob"
    # Outside the delegation: no reading the record, no acting for someone else.
    assert community.http.get("/fhir/Observation/bob-glu-0", headers=proxy).status_code == 404
    assert community.http.post("/fhir/Consent", json=build_consent(
        "alice", "Organization/clinic-b", ["TREAT"]), headers=proxy).status_code == 422
    # The resident withdraws the delegation: the proxy's token stops working at once.
    person = son.json()
    person["active"] = False
    assert community.http.put(f"/fhir/RelatedPerson/{person['id']}", json=person,
                              headers=me).status_code == 200
    assert community.http.post("/fhir/Consent", json=build_consent(
        "bob", "Organization/clinic-b", ["TREAT"]), headers=proxy).status_code == 422


def test_expired_delegation_grants_nothing(community: Community) -> None:
    past = (community.clock.now() - timedelta(days=1)).date().isoformat()
    son = community.http.post("/fhir/RelatedPerson", json=build_proxy(
        "bob", "李", "明", "SON", ["read"], {"end": past}),
        headers=community.resident_headers("bob"))
    proxy = {"Authorization": "Bearer " + community.services.tokens.issue_proxy(
        son.json()["id"])}
    assert community.http.get("/fhir/Patient/bob", headers=proxy).status_code == 404


def test_clients_cannot_register_proxies(community: Community) -> None:
    h = community.headers("clinic-b", scope="system/*.cruds")
    r = community.http.post("/fhir/RelatedPerson",
                            json=build_proxy("bob", "李", "明", "SON", ["read", "consent"]),
                            headers=h)
    assert r.status_code == 422

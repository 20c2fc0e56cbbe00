"""Labels reach the records that point at labelled ones (#15, point 8), over HTTP.

Alice's consents: clinic A treats her (no sensitive class opened); clinic B treats her
with mental health (PSY) opened; the insurer settles her claims (no PSY); the clinics'
billing office submits her claims for payment with PSY opened. A Claim coded as
depression is labelled PSY on the way in and withheld from the insurer; each record that
points at it, or at another withheld record of hers, is withheld with it, from whoever
its target is withheld from, and seen by Alice and by whoever may see its target.
"""

import base64
from typing import Any

import pytest

from consent.model import build_consent
from exchange.decisions.labels import label_records
from exchange.identity.assertion import generate_key
from tests.community import Community, RegisteredClient, build_community

ICD10 = "http://hl7.org/fhir/sid/icd-10"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PSY = {"system": ACT_CODE, "code": "PSY"}
PAYMENT_CLASSES = ["Patient", "Claim", "ClaimResponse", "ExplanationOfBenefit", "Condition",
                   "Encounter"]


def add_billing(community: Community) -> None:
    """A clinic's billing office: submits claims for payment (HPAYMT), and may write."""
    pem, jwk = generate_key("ES384", "billing-1")
    community.services.registry.add("billing", "billing", "Organization/billing", "clinic",
                                    {"keys": [jwk]}, ["HPAYMT"], "system/*.cruds")
    community.clients["billing"] = RegisteredClient("billing", "ES384", jwk["kid"], pem)


def consents_of(pid: str, community: Community) -> list[dict[str, Any]]:
    now = community.clock.now()
    return [
        {**build_consent(pid, "Organization/insurer", ["HPAYMT"], classes=PAYMENT_CLASSES,
                         when=now), "id": f"{pid}-pay"},
        {**build_consent(pid, "Organization/billing", ["HPAYMT"], labels=["PSY"], when=now),
         "id": f"{pid}-billing"},
        {**build_consent(pid, "Organization/clinic-b", ["TREAT"], labels=["PSY"], when=now),
         "id": f"{pid}-treat-b-psy"},
    ]


@pytest.fixture
def world(tmp_path) -> Community:
    community = build_community(tmp_path)
    add_billing(community)
    community.services.repository.ingest(consents_of("alice", community))
    return community


def billing(c: Community) -> dict[str, str]:
    return c.headers("billing", "HPAYMT", "system/*.cruds")


def insurer(c: Community) -> dict[str, str]:
    return c.headers("insurer", "HPAYMT")


def clinic_a(c: Community) -> dict[str, str]:
    return c.headers("clinic-a", scope="system/*.cruds")


def clinic_b(c: Community) -> dict[str, str]:
    return c.headers("clinic-b", scope="system/*.cruds")


def coded(code: str) -> dict[str, Any]:
    return {"coding": [{"system": ICD10, "code": code}]}


def claim(pid: str, code: str, encounter: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"sequence": 1, "productOrService": {"coding": [{
        "system": "https://fhir.community-exchange.example/CodeSystem/service",
        "code": "OUTPATIENT"}]}, "net": {"value": 120.0, "currency": "CNY"}}
    if encounter:
        item["encounter"] = [{"reference": encounter}]
    return {"resourceType": "Claim", "status": "active",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                                 "code": "professional"}]},
            "use": "claim", "patient": {"reference": f"Patient/{pid}"},
            "created": "2024-10-01", "provider": {"reference": "Organization/clinic-a"},
            "priority": {"coding": [{"code": "normal"}]},
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "basic"}}],
            "diagnosis": [{"sequence": 1, "diagnosisCodeableConcept": coded(code)}],
            "item": [item]}


def eob(pid: str, claim_ref: str) -> dict[str, Any]:
    """An ExplanationOfBenefit as the demo writes one: no diagnosis of its own, only the
    pointer at its Claim (which was enough to tell depression apart)."""
    return {"resourceType": "ExplanationOfBenefit", "status": "active",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                                 "code": "professional"}]},
            "use": "claim", "patient": {"reference": f"Patient/{pid}"},
            "created": "2024-10-01", "insurer": {"reference": "Organization/insurer"},
            "provider": {"reference": "Organization/clinic-a"},
            "claim": {"reference": claim_ref}, "outcome": "complete",
            "insurance": [{"focal": True, "coverage": {"display": "basic"}}],
            "payment": {"amount": {"value": 84.0, "currency": "CNY"}}}


def encounter(pid: str, code: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "status": "finished",
            "class": {"system": ACT_CODE, "code": "AMB"},
            "subject": {"reference": f"Patient/{pid}"},
            "period": {"start": "2024-10-01T09:00:00+08:00"}, "reasonCode": [coded(code)]}


def condition(pid: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Condition", "code": coded(code),
            "subject": {"reference": f"Patient/{pid}"}, "onsetDateTime": "2024-01-01",
            **extra}


def provenance(*targets: str) -> dict[str, Any]:
    return {"resourceType": "Provenance", "target": [{"reference": t} for t in targets],
            "recorded": "2024-10-01T10:00:00+08:00",
            "agent": [{"who": {"reference": "Organization/clinic-b"}}]}


def document(pid: str, **context: Any) -> dict[str, Any]:
    text = base64.b64encode("Discharge letter 出院小结".encode()).decode()
    return {"resourceType": "DocumentReference", "status": "current",
            "subject": {"reference": f"Patient/{pid}"},
            "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                                        "data": text}}],
            "context": context}


def create(c: Community, headers: dict[str, str], resource: dict[str, Any]) -> str:
    r = c.http.post(f"/fhir/{resource['resourceType']}", json=resource, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def status(c: Community, headers: dict[str, str], ref: str) -> int:
    return c.http.get(f"/fhir/{ref}", headers=headers).status_code


def found(c: Community, headers: dict[str, str], query: str) -> set[str]:
    r = c.http.get(f"/fhir/{query}", headers=headers)
    assert r.status_code == 200, r.text
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}"
            for e in r.json().get("entry", []) if e["search"]["mode"] in ("match", "include")}


def total(c: Community, headers: dict[str, str], query: str) -> int:
    r = c.http.get(f"/fhir/{query}&_summary=count", headers=headers)
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


def labels_seen(c: Community, headers: dict[str, str], ref: str) -> list[dict[str, Any]]:
    r = c.http.get(f"/fhir/{ref}", headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json().get("meta", {}).get("security", []))


def seen_by_alice_and_the_entitled(c: Community, entitled: dict[str, str], ref: str) -> None:
    for who in (c.resident_headers("alice"), entitled):
        assert PSY in labels_seen(c, who, ref)


# -- one test per kind of dependent -------------------------------------------------------


def test_an_explanation_of_benefit_is_withheld_with_its_claim(world: Community) -> None:
    c = world
    depressed = create(c, billing(c), claim("alice", "F32.9"))
    hidden = f"ExplanationOfBenefit/{create(c, billing(c), eob('alice', f'Claim/{depressed}'))}"
    plain = create(c, billing(c), claim("alice", "I10"))
    shown = f"ExplanationOfBenefit/{create(c, billing(c), eob('alice', f'Claim/{plain}'))}"
    assert status(c, insurer(c), f"Claim/{depressed}") == 404
    assert status(c, insurer(c), hidden) == 404
    assert status(c, insurer(c), shown) == 200
    assert found(c, insurer(c), "ExplanationOfBenefit?patient=alice") == {shown}
    assert total(c, insurer(c), "ExplanationOfBenefit?patient=alice") == 1
    assert found(c, insurer(c), f"ExplanationOfBenefit?claim=Claim/{depressed}") == set()
    seen_by_alice_and_the_entitled(c, billing(c), hidden)
    assert PSY not in labels_seen(c, insurer(c), shown)


def test_a_provenance_is_withheld_with_its_target(world: Community) -> None:
    c = world
    depression = create(c, clinic_b(c), condition("alice", "F32.9"))
    hidden = f"Provenance/{create(c, clinic_b(c), provenance(f'Condition/{depression}'))}"
    hypertension = create(c, clinic_b(c), condition("alice", "I10"))
    shown = f"Provenance/{create(c, clinic_b(c), provenance(f'Condition/{hypertension}'))}"
    assert status(c, clinic_a(c), f"Condition/{depression}") == 404
    assert status(c, clinic_a(c), hidden) == 404
    assert status(c, clinic_a(c), shown) == 200
    assert found(c, clinic_a(c), f"Provenance?target=Condition/{depression}") == set()
    assert found(c, clinic_a(c), f"Provenance?target=Condition/{hypertension}") == {shown}
    seen_by_alice_and_the_entitled(c, clinic_b(c), hidden)


def test_a_document_reference_is_withheld_with_its_context(world: Community) -> None:
    c = world
    visit = create(c, clinic_b(c), encounter("alice", "F32.9"))
    depression = create(c, clinic_b(c), condition("alice", "F32.9"))
    of_visit = create(c, clinic_b(c), document(
        "alice", encounter=[{"reference": f"Encounter/{visit}"}]))
    of_condition = create(c, clinic_b(c), document(
        "alice", related=[{"reference": f"Condition/{depression}"}]))
    routine = create(c, clinic_b(c), encounter("alice", "I10"))
    shown = create(c, clinic_b(c), document(
        "alice", encounter=[{"reference": f"Encounter/{routine}"}]))
    hidden = {f"DocumentReference/{of_visit}", f"DocumentReference/{of_condition}"}
    for ref in hidden:
        assert status(c, clinic_a(c), ref) == 404
        seen_by_alice_and_the_entitled(c, clinic_b(c), ref)
    assert found(c, clinic_a(c), "DocumentReference?patient=alice") == {
        f"DocumentReference/{shown}"}
    assert found(c, clinic_b(c), "DocumentReference?patient=alice") == {
        *hidden, f"DocumentReference/{shown}"}


def test_a_condition_is_withheld_with_its_evidence(world: Community) -> None:
    """The community's PHQ-9 score of Alice's (``alice-psy``) is labelled PSY: a
    Condition that cites it as evidence says as much, whatever its own code."""
    c = world
    cited = create(c, clinic_b(c), condition("alice", "I10", evidence=[
        {"detail": [{"reference": "Observation/alice-psy"}]}]))
    uncited = create(c, clinic_b(c), condition("alice", "I10"))
    assert status(c, clinic_a(c), f"Condition/{cited}") == 404
    assert status(c, clinic_a(c), f"Condition/{uncited}") == 200
    assert f"Condition/{cited}" not in found(c, clinic_a(c), "Condition?patient=alice")
    assert found(c, clinic_a(c), "Condition?evidence-detail=Observation/alice-psy") == set()
    seen_by_alice_and_the_entitled(c, clinic_b(c), f"Condition/{cited}")


# -- the order of writes --------------------------------------------------------------------


def test_a_claim_coded_sensitive_after_its_eob_withholds_the_eob(world: Community) -> None:
    """The EOB (and the Provenance of the EOB) was released; the Claim is then corrected
    to depression: both are relabelled in the Claim's own transaction, and named by its
    audit entry, and withheld from then on, every version."""
    c = world
    body = claim("alice", "I10")
    claim_id = create(c, billing(c), body)
    eob_ref = f"ExplanationOfBenefit/{create(c, billing(c), eob('alice', f'Claim/{claim_id}'))}"
    prov_ref = f"Provenance/{create(c, clinic_a(c), provenance(eob_ref, 'Patient/alice'))}"
    assert status(c, insurer(c), eob_ref) == 200
    assert status(c, clinic_a(c), prov_ref) == 200
    assert total(c, insurer(c), "ExplanationOfBenefit?patient=alice") == 1

    corrected = {**body, "id": claim_id, "diagnosis": [
        {"sequence": 1, "diagnosisCodeableConcept": coded("F32.1")}]}
    r = c.http.put(f"/fhir/Claim/{claim_id}", json=corrected, headers=billing(c))
    assert r.status_code == 200, r.text

    assert status(c, insurer(c), eob_ref) == 404
    assert status(c, insurer(c), f"{eob_ref}/_history/1") == 404
    assert c.http.get(f"/fhir/{eob_ref}/_history", headers=insurer(c)).status_code == 404
    assert total(c, insurer(c), "ExplanationOfBenefit?patient=alice") == 0
    assert status(c, clinic_a(c), prov_ref) == 404
    seen_by_alice_and_the_entitled(c, billing(c), eob_ref)
    seen_by_alice_and_the_entitled(c, clinic_b(c), prov_ref)
    _, page = c.services.ledger.query(resident="alice", limit=500)
    (entry,) = [e for _, e in page if e.get("action") == "update"
                and (e.get("what") or {}).get("id") == claim_id]
    assert set(entry["written"]) == {f"Claim/{claim_id}/_history/2",
                                     f"{eob_ref}/_history/2", f"{prov_ref}/_history/2"}


def test_a_pointer_no_search_parameter_reads_reaches_too(world: Community) -> None:
    """A Claim that names its diagnosis by reference (``diagnosisReference``, which no
    search parameter of R4 reads), the Condition coded as depression after the Claim was
    written: the Claim is found, and relabelled, all the same."""
    c = world
    body = condition("alice", "R53.83")
    cond = create(c, clinic_b(c), body)
    claimed = {**claim("alice", "I10"), "diagnosis": [
        {"sequence": 1, "diagnosisReference": {"reference": f"Condition/{cond}"}}]}
    claim_ref = f"Claim/{create(c, billing(c), claimed)}"
    assert status(c, insurer(c), claim_ref) == 200
    r = c.http.put(f"/fhir/Condition/{cond}", headers=clinic_b(c),
                   json={**body, "id": cond, "code": coded("F32.9")})
    assert r.status_code == 200, r.text
    assert status(c, insurer(c), claim_ref) == 404
    seen_by_alice_and_the_entitled(c, billing(c), claim_ref)


def test_a_transaction_labels_its_entries_from_each_other(world: Community) -> None:
    """The EOB comes before its Claim in the Bundle: it is labelled from what its pointer
    names, wherever that stands. A Provenance of the EOB, written after, is labelled
    from the EOB."""
    c = world
    claim_url = "urn:uuid:8c7d0f7e-0000-4000-8000-000000000001"
    r = c.http.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": eob("alice", claim_url),
         "request": {"method": "POST", "url": "ExplanationOfBenefit"}},
        {"fullUrl": claim_url, "resource": claim("alice", "F33.0"),
         "request": {"method": "POST", "url": "Claim"}},
    ]}, headers=billing(c))
    assert r.status_code == 200, r.text
    eob_ref, claim_ref = ("/".join(e["response"]["location"].split("/")[:2])
                          for e in r.json()["entry"])
    prov = f"Provenance/{create(c, clinic_b(c), provenance(eob_ref, 'Patient/alice'))}"
    for ref in (eob_ref, claim_ref):
        assert status(c, insurer(c), ref) == 404
        seen_by_alice_and_the_entitled(c, billing(c), ref)
    assert status(c, clinic_a(c), prov) == 404
    seen_by_alice_and_the_entitled(c, clinic_b(c), prov)


def test_labels_pass_on_through_stored_and_written_records_alike(world: Community) -> None:
    """The Encounter (stored) is for depression; the Claim of it is coded as hypertension,
    and its EOB names only the Claim, both written in one Bundle: the Claim takes the
    Encounter's label from the store, the EOB the Claim's from the Bundle."""
    c = world
    r = c.http.post("/fhir", json=visit_bundle(c, "alice", "F32.9", claimed="I10"),
                    headers=billing(c))
    assert r.status_code == 200, r.text
    refs = ["/".join(e["response"]["location"].split("/")[:2]) for e in r.json()["entry"]]
    assert [ref.split("/")[0] for ref in refs] == ["Claim", "ExplanationOfBenefit"]
    for ref in refs:
        assert status(c, insurer(c), ref) == 404
        seen_by_alice_and_the_entitled(c, billing(c), ref)


# -- the reverse: no search reaches a withheld record through a dependent --------------------


def test_includes_and_chains_do_not_reach_a_withheld_claim(world: Community) -> None:
    c = world
    depressed = create(c, billing(c), claim("alice", "F32.9"))
    hidden_eob = create(c, billing(c), eob("alice", f"Claim/{depressed}"))
    plain = create(c, billing(c), claim("alice", "I10"))
    shown_eob = create(c, billing(c), eob("alice", f"Claim/{plain}"))
    hidden = {f"Claim/{depressed}", f"ExplanationOfBenefit/{hidden_eob}"}
    shown = {f"Claim/{plain}", f"ExplanationOfBenefit/{shown_eob}"}
    for query in ("ExplanationOfBenefit?patient=alice&_include=ExplanationOfBenefit:claim",
                  "Claim?patient=alice&_revinclude=ExplanationOfBenefit:claim"):
        seen = found(c, insurer(c), query)
        assert shown <= seen and not seen & hidden
        assert shown | hidden <= found(c, billing(c), query)
    for query in ("ExplanationOfBenefit?claim.status=active",
                  "ExplanationOfBenefit?claim.created=2024-10-01",
                  "Claim?_has:ExplanationOfBenefit:claim:status=active"):
        seen = found(c, insurer(c), query)
        assert seen & shown and not seen & hidden, query
        assert found(c, billing(c), query) & hidden, query
    assert found(c, insurer(c),
                 "Patient?_has:ExplanationOfBenefit:patient:claim=Claim/" + depressed) == set()
    assert found(c, billing(c),
                 "Patient?_has:ExplanationOfBenefit:patient:claim=Claim/" + depressed) == {
        "Patient/alice"}


# -- the attack measured: the insurer reads EOBs and follows their claims ------------------


def visit_bundle(c: Community, pid: str, code: str, claimed: str | None = None
                 ) -> dict[str, Any]:
    """A visit as the demo records one: the treating clinic's Encounter (for ``code``),
    then the billing office's Claim of it (coded ``claimed``, else ``code``) and the
    Claim's EOB, in one Bundle that points at the Claim by its ``urn:uuid``."""
    visit = create(c, clinic_b(c), encounter(pid, code))
    claim_url = "urn:uuid:5f0c1a52-9d1e-4c38-8a55-0d3b2f6e9c01"
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": claim_url, "resource": claim(pid, claimed or code, f"Encounter/{visit}"),
         "request": {"method": "POST", "url": "Claim"}},
        {"resource": eob(pid, claim_url),
         "request": {"method": "POST", "url": "ExplanationOfBenefit"}},
    ]}


def test_the_insurer_identifies_no_one_from_explanations_of_benefit(tmp_path) -> None:
    """20 residents who let the insurer settle their claims, 13 of them treated for
    depression (the measured attack identified 13 of 13): the insurer pages through every
    EOB and follows each to its Claim. A resident is identified when an EOB of theirs
    points at a Claim the insurer may not see, or at one coded as depression."""
    c = build_community(tmp_path)
    add_billing(c)
    residents = [f"r{n:02d}" for n in range(20)]
    depressed = set(residents[:13])
    c.services.repository.ingest([
        {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1945-01-01"}
        for pid in residents])
    c.services.repository.ingest([x for pid in residents for x in consents_of(pid, c)])
    for pid in residents:
        for code in (["F32.9", "I10"] if pid in depressed else ["I10", "E11.9"]):
            r = c.http.post("/fhir", json=visit_bundle(c, pid, code), headers=billing(c))
            assert r.status_code == 200, r.text

    r = c.http.get("/fhir/ExplanationOfBenefit?_count=500", headers=insurer(c))
    assert r.status_code == 200, r.text
    eobs = [e["resource"] for e in r.json()["entry"] if e["search"]["mode"] == "match"]
    identified = set()
    for item in eobs:
        pid = item["patient"]["reference"].split("/", 1)[1]
        answer = c.http.get(f"/fhir/{item['claim']['reference']}", headers=insurer(c))
        codes = {d["diagnosisCodeableConcept"]["coding"][0]["code"]
                 for d in (answer.json().get("diagnosis") or [])} \
            if answer.status_code == 200 else set()
        if answer.status_code != 200 or any(code.startswith("F3") for code in codes):
            identified.add(pid)
    assert len(identified & depressed) == 0, f"identified {len(identified & depressed)} of 13"
    # Each resident's routine visits are still settled: the insurer sees every EOB of a
    # Claim it may see, and as many EOBs as Claims, resident by resident.
    assert len(eobs) == 13 + 2 * 7
    for pid in residents:
        assert total(c, insurer(c), f"ExplanationOfBenefit?patient={pid}") == total(
            c, insurer(c), f"Claim?patient={pid}")
    # The billing office, which may see PSY, sees every visit.
    assert total(c, billing(c), "ExplanationOfBenefit?_count=0") == 40


def test_records_loaded_together_are_labelled_from_each_other(world: Community) -> None:
    """A seeded community (``exchange demo``) is loaded, not written through the gate:
    its records are labelled from each other alike."""
    c = world
    services = c.services
    here = services.repository.here
    loaded = label_records(services.decider, [
        {**eob("alice", "Claim/seeded-claim"), "id": "seeded-eob"},
        {**claim("alice", "F32.9"), "id": "seeded-claim"},
        {**eob("alice", "Claim/alice-claim"), "id": "plain-eob"},
    ], here)
    assert [PSY in (r.get("meta") or {}).get("security", []) for r in loaded] == [
        True, True, False]
    services.repository.ingest(loaded)
    assert status(c, insurer(c), "ExplanationOfBenefit/seeded-eob") == 404
    assert status(c, insurer(c), "ExplanationOfBenefit/plain-eob") == 200

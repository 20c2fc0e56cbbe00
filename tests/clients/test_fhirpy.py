"""``fhirpy``, unmodified, against the running exchange, with a bearer token obtained the
SMART Backend Services way (a private-key JWT, no purpose of use: clinic B has one).

Read, search page by page, ``_include``, create, update with If-Match, conditional
create, a transaction, history and ``$everything``. Bob consents to clinic B.
"""

from typing import Any

import httpx
import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound, OperationOutcome, ResourceNotFound

from tests.clients.conftest import Served
from tests.community import ASSERTION_TYPE, RESIDENT_ID


def bearer(served: Served) -> str:
    r = httpx.post(served.token_url, data={
        "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": served.community.assertion("clinic-b"),
        "scope": "system/*.cruds"})
    assert r.status_code == 200, r.text
    return f"Bearer {r.json()['access_token']}"


def connect(served: Served, **headers: str) -> SyncFHIRClient:
    return SyncFHIRClient(served.fhir_base, authorization=bearer(served),
                          extra_headers=headers or None)


def observation(value: float) -> dict[str, Any]:
    return {"status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/bob"},
            "effectiveDateTime": "2025-02-01T08:00:00Z",
            "valueQuantity": {"value": value, "unit": "/min"}}


def test_read_search_paging_and_include(served: Served) -> None:
    fhir = connect(served)
    bob = fhir.reference("Patient", "bob").to_resource()
    assert bob["name"][0]["family"] == "李"
    found = fhir.resources("Observation").search(patient="bob").limit(2).fetch_all()
    assert {o["id"] for o in found} == {"bob-glu-0", "bob-glu-1", "bob-glu-2"}
    raw = fhir.resources("Observation").search(patient="bob") \
        .include("Observation", "subject").fetch_raw()
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in raw["entry"]}
    assert ("Patient", "include") in modes
    with pytest.raises(ResourceNotFound):
        fhir.reference("Patient", "alice").to_resource()  # hidden: as if missing


def test_create_update_with_if_match_and_history(served: Served) -> None:
    fhir = connect(served)
    obs = fhir.resource("Observation", **observation(70))
    obs.save()
    assert obs["id"] and obs["meta"]["versionId"] == "1"
    guarded = connect(served, **{"If-Match": 'W/"1"'})
    again = guarded.resource("Observation", **{**obs.serialize(),
                                              "valueQuantity": {"value": 71, "unit": "/min"}})
    again.save()
    assert again["meta"]["versionId"] == "2"
    with pytest.raises(MultipleResourcesFound):  # fhirpy's name for any 412
        again.save()  # If-Match: 1 is stale now
    history = fhir.execute(f"Observation/{obs['id']}/_history", method="get")
    assert history["type"] == "history" and history["total"] == 2


def test_conditional_create(served: Served) -> None:
    fhir = connect(served)
    # fhirpy's get_or_create sends the criteria as a query on POST, which R4 does not
    # define: refused rather than ignored (ignoring them would register a duplicate).
    with pytest.raises(OperationOutcome):
        fhir.resources("Patient").search(_id="bob").get_or_create(
            fhir.resource("Patient", name=[{"family": "李"}]))
    # The R4 way, If-None-Exist, finds Bob by his resident id number.
    criteria = f"identifier={RESIDENT_ID}|330105193805170031"
    conditional = connect(served, **{"If-None-Exist": criteria})
    patient = conditional.resource("Patient", name=[{"family": "李"}])
    patient.save()
    assert patient["id"] == "bob"
    assert len(fhir.resources("Patient").search(family="李").fetch_all()) == 1


def test_transaction_and_everything(served: Served) -> None:
    fhir = connect(served)
    answer = fhir.execute("", method="post", data={
        "resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Observation", **observation(66)},
             "request": {"method": "POST", "url": "Observation"}},
            {"request": {"method": "GET", "url": "Observation?patient=bob&code=8867-4"}}]})
    assert answer["type"] == "transaction-response"
    assert answer["entry"][1]["resource"]["total"] == 1
    everything = fhir.resource("Patient", id="bob").execute("$everything", method="post")
    assert {e["resource"]["resourceType"] for e in everything["entry"]} >= {
        "Patient", "Observation", "Condition"}

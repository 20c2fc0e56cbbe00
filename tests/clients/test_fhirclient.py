"""SMART's own Python client (``fhirclient``), unmodified, against the running exchange.

It discovers the token endpoint from the CapabilityStatement, signs in as a Backend
Services client with a private-key JWT and no purpose of use (clinic B is registered for
one), then reads, searches page by page, includes, creates, updates with If-Match,
posts a transaction, reads history and ``$everything``. Bob consents to clinic B.
"""

from typing import Any

import pytest
import requests
from fhirclient import client
from fhirclient.models.bundle import Bundle
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient

from tests.clients.conftest import Served


def connect(served: Served) -> client.FHIRClient:
    smart = client.FHIRClient(settings={
        "app_id": "clinic-b", "api_base": served.fhir_base, "scope": "system/*.cruds",
        "jwt_token": served.community.assertion("clinic-b")})
    smart.prepare()  # reads /metadata: the token endpoint is in its oauth-uris extension
    smart.authorize()
    assert smart.ready
    return smart


def new_observation(value: float) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/bob"},
            "effectiveDateTime": "2025-02-01T08:00:00Z",
            "valueQuantity": {"value": value, "unit": "/min"}}


def test_read_search_paging_and_include(served: Served) -> None:
    smart = connect(served)
    bob = Patient.read("bob", smart.server)
    assert bob.id == "bob" and bob.name[0].family == "李"
    search = Observation.where(struct={"patient": "bob", "_count": "2"})
    pages = list(search.perform_iter(smart.server))  # follows the next links
    assert len(pages) == 2 and pages[0].total == 3
    ids = {e.resource.id for page in pages for e in page.entry or []}
    assert ids == {"bob-glu-0", "bob-glu-1", "bob-glu-2"}  # the PSY one is withheld
    included = Observation.where(struct={"patient": "bob"}).include("subject")
    bundle = next(included.perform_iter(smart.server))
    modes = {(e.resource.resource_type, e.search.mode) for e in bundle.entry}
    assert ("Patient", "include") in modes and ("Observation", "match") in modes
    with pytest.raises(Exception, match="404"):
        Patient.read("alice", smart.server)  # not Bob's clinic: as if there were none


def test_create_update_with_if_match_history(served: Served) -> None:
    smart = connect(served)
    created = Observation(new_observation(70)).create(smart.server)
    assert created is not None
    oid = created["id"]
    obs = Observation.read(oid, smart.server)
    obs.valueQuantity.value = 71
    smart.server.session.headers["If-Match"] = 'W/"1"'
    try:
        updated = obs.update(smart.server)
        assert updated is not None and updated["meta"]["versionId"] == "2"
        with pytest.raises(requests.HTTPError) as stale:
            obs.update(smart.server)  # version 1 is stale now
        assert stale.value.response.status_code == 412
    finally:
        del smart.server.session.headers["If-Match"]
    history = Bundle(smart.server.request_json(f"Observation/{oid}/_history"))
    assert history.type == "history" and history.total == 2


def test_transaction_and_everything(served: Served) -> None:
    smart = connect(served)
    bundle = Bundle({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:3c8b1e2a-6f4d-4b0e-9c1a-2d7e5f8a9b10",
         "resource": new_observation(68), "request": {"method": "POST",
                                                      "url": "Observation"}},
        {"request": {"method": "GET", "url": "Patient/bob"}}]})
    answer = Bundle(bundle.create(smart.server))
    assert answer.type == "transaction-response"
    assert answer.entry[0].response.status.startswith("201")
    assert answer.entry[1].resource.id == "bob"
    everything = Bundle(smart.server.request_json("Patient/bob/$everything"))
    types = {e.resource.resource_type for e in everything.entry}
    assert {"Patient", "Observation", "Condition"} <= types

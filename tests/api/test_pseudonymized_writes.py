"""A write is a disclosure too, for recipients of pseudonymized records: they know
residents' records by pseudonyms only, so a real id learnt elsewhere, named in an update,
a patch, a delete, a conditional write, a Bundle entry, a record referring to it or a new
record naming its resident, changes nothing and answers exactly as a missing id would
(found by an attacker: the hub's PUT by real id answered 200, its DELETE 204)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from consent.model import build_consent
from tests.community import Community, RegisteredClient, build_community, generate_key


@pytest.fixture()
def hub_writer(tmp_path: Path) -> Iterator[Community]:
    """The small community with a hub client that holds write scopes, and bob consenting
    to the hub's care management: the hub sees bob's readings under pseudonyms."""
    community = build_community(tmp_path, k_anonymity=1)
    pem, jwk = generate_key("ES384", "hub-w-1")
    community.services.registry.add("hub-w", "hub-w", "Organization/hub", "hub",
                                    {"keys": [jwk]}, ["CAREMGT"], "system/*.cruds")
    community.clients["hub-w"] = RegisteredClient("hub-w", "ES384", jwk["kid"], pem)
    r = community.http.post("/fhir/Consent", json=build_consent(
        "bob", "Organization/hub", ["CAREMGT"]), headers=community.resident_headers("bob"))
    assert r.status_code == 201
    yield community
    community.services.engine.dispose()


def _headers(community: Community, **extra: str) -> dict[str, str]:
    return {**community.headers("hub-w", "CAREMGT", "system/*.cruds"),
            "X-Request-ID": "same-request", **extra}


def _observation(rid: str, subject: str) -> dict[str, object]:
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "15074-8"}]},
            "subject": {"reference": subject}, "valueQuantity": {"value": 1.0}}


def _same(a: object, b: object) -> None:
    from httpx import Response

    assert isinstance(a, Response) and isinstance(b, Response)
    assert a.status_code == b.status_code, (a.status_code, a.text, b.status_code, b.text)
    assert a.status_code in (404, 422), a.text
    assert a.content == b.content


def test_the_hub_sees_bob_under_a_pseudonym_only(hub_writer: Community) -> None:
    found = hub_writer.http.get("/fhir/Patient", headers=_headers(hub_writer)).json()
    assert found["total"] == 1
    assert all("bob" not in e.get("fullUrl", "") for e in found["entry"])


def test_update_patch_and_delete_by_real_id_answer_as_missing(hub_writer: Community) -> None:
    http = hub_writer.http
    before = hub_writer.services.repository.read("Observation", "bob-glu-0")
    assert before is not None
    for real, missing in (("bob-glu-0", "no-such"),):
        _same(http.put(f"/fhir/Observation/{real}", json=_observation(real, "Patient/bob"),
                       headers=_headers(hub_writer)),
              http.put(f"/fhir/Observation/{missing}",
                       json=_observation(missing, "Patient/bob"),
                       headers=_headers(hub_writer)))
        patch = [{"op": "replace", "path": "/status", "value": "amended"}]
        _same(http.patch(f"/fhir/Observation/{real}", json=patch,
                         headers=_headers(hub_writer,
                                          **{"Content-Type": "application/json-patch+json"})),
              http.patch(f"/fhir/Observation/{missing}", json=patch,
                         headers=_headers(hub_writer,
                                          **{"Content-Type": "application/json-patch+json"})))
        _same(http.delete(f"/fhir/Observation/{real}", headers=_headers(hub_writer)),
              http.delete(f"/fhir/Observation/{missing}", headers=_headers(hub_writer)))
    after = hub_writer.services.repository.read("Observation", "bob-glu-0")
    assert after is not None and not after.deleted
    assert after.version_id == before.version_id


def test_new_records_naming_or_referring_to_a_real_id_answer_as_missing(
        hub_writer: Community) -> None:
    http = hub_writer.http
    _same(http.post("/fhir/Observation", json=_observation("x", "Patient/bob"),
                    headers=_headers(hub_writer)),
          http.post("/fhir/Observation", json=_observation("x", "Patient/no-such"),
                    headers=_headers(hub_writer)))

    def provenance(target: str) -> dict[str, object]:
        return {"resourceType": "Provenance", "target": [{"reference": target}],
                "recorded": "2024-01-01T00:00:00Z",
                "agent": [{"who": {"reference": "Organization/hub"}}]}

    _same(http.post("/fhir/Provenance", json=provenance("Observation/bob-glu-0"),
                    headers=_headers(hub_writer)),
          http.post("/fhir/Provenance", json=provenance("Observation/no-such"),
                    headers=_headers(hub_writer)))


def test_bundle_entries_by_real_id_change_nothing(hub_writer: Community) -> None:
    def bundle(rid: str) -> dict[str, object]:
        return {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": _observation(rid, "Patient/bob"),
             "request": {"method": "PUT", "url": f"Observation/{rid}"}}]}

    http = hub_writer.http
    _same(http.post("/fhir", json=bundle("bob-glu-1"), headers=_headers(hub_writer)),
          http.post("/fhir", json=bundle("no-such"), headers=_headers(hub_writer)))
    row = hub_writer.services.repository.read("Observation", "bob-glu-1")
    assert row is not None and row.version_id == 1

"""Every refused request leaves exactly one audit entry, whether the road refused it or
the HTTP layer did before the road began (no such endpoint, a wrong method, a malformed
path, a wrong media type), and the entry is written before the answer leaves."""

from urllib.parse import unquote

import pytest

from tests.community import Community

CASES = [
    ("get", "/no/such/endpoint", None, 404),
    ("get", "/fhir/Observation/alice-glu-0/_history/abc", None, 400),
    ("get", "/compliance/replay/abc", None, 400),
    ("get", "/compliance/summary?days=100000", None, 400),
    ("post", "/fhir/Observation/alice-glu-0", None, 405),
    ("patch", "/fhir/Observation/alice-glu-0", None, 415),  # not a JSON Patch
    ("post", "/fhir/Observation", "text/plain", 415),
    ("get", "/fhir/Observation/no-such", None, 404),       # refused on the road
    ("get", "/fhir/Nonsense/1", None, 404),                # refused on the road
    # Path parameters out of their format or range: a 400 before they reach the store.
    ("get", "/fhir/Observation/alice-glu-0/_history/0", None, 400),
    ("get", "/fhir/Observation/alice-glu-0/_history/18446744073709551616", None, 400),
    ("get", "/fhir/Consent/alice-treat-a/_history/99999999999/$receipt", None, 400),
    ("get", "/compliance/replay/18446744073709551616", None, 403),  # not an officer
    ("get", "/fhir/Observation/" + "a" * 65, None, 400),
    ("get", "/fhir/Observation/bad%24id", None, 400),
    ("get", "/fhir/Observation/a_b/_history", None, 400),
    ("get", "/fhir/Observation/a%20b/_history/1", None, 400),
    ("get", "/fhir/Consent/a%2Cb/$receipt", None, 400),
    ("get", "/fhir/Patient/%E7%8E%8B/$everything", None, 400),
    ("delete", "/fhir/Observation/bad%24id", None, 400),
]


@pytest.mark.parametrize(("method", "path", "mime", "status"), CASES,
                         ids=[f"{m} {p}" for m, p, _, _ in CASES])
def test_a_refusal_is_recorded_once(community: Community, method: str, path: str,
                                    mime: str | None, status: int) -> None:
    headers = community.headers("clinic-a", scope="system/*.cruds")
    if mime:
        headers["Content-Type"] = mime
    ledger = community.services.ledger
    before = ledger.size()
    r = community.http.request(method, path, headers=headers,
                               content=b"{}" if method == "post" else None)
    assert r.status_code == status, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert ledger.size() == before + 1, path
    entry = ledger.read(before + 1)
    assert entry is not None
    assert entry["status"] == status
    assert entry["outcome"] in ("refused", "not-found", "denied")
    # A resident's id in a path is recorded as their ledger reference, anything else
    # there (a name sent as an id) as withheld (exchange/privacy/request_scrub.py).
    assert entry["request"]["path"] == unquote(path.split("?")[0]).replace(
        "/Patient/王/", "/Patient/[withheld]/")


def test_an_unrecordable_refusal_is_a_503(community: Community,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from exchange.errors import AuditUnavailable

    def broken(*args: object, **kwargs: object) -> None:
        raise AuditUnavailable()

    monkeypatch.setattr(community.services.ledger, "append_many", broken)
    r = community.http.get("/no/such/endpoint")
    assert r.status_code == 503
    assert r.json()["issue"][0]["details"]["coding"][0]["code"] == "audit-unavailable"


def test_an_id_out_of_format_is_refused_in_writes_and_bundle_entries(
        community: Community) -> None:
    headers = {**community.headers("clinic-a", scope="system/*.cruds"),
               "Content-Type": "application/fhir+json"}
    body = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/alice"}}
    ledger = community.services.ledger
    before = ledger.size()
    def stored() -> int:
        r = community.http.get("/fhir/Observation?patient=alice&_summary=count",
                               headers=headers)
        return int(r.json()["total"])

    observations = stored()
    before = ledger.size()
    r = community.http.put("/fhir/Observation/x%3By", json=body, headers=headers)
    assert r.status_code == 400
    assert "id" in r.json()["issue"][0]["diagnostics"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b7e3f34-5a4e-4c39-9a39-0a8c3e1d2f10", "resource": body,
         "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "DELETE", "url": "Observation/" + "z" * 65}}]}
    r = community.http.post("/fhir", json=bundle, headers=headers)
    assert r.status_code == 400, r.text
    assert "id" in r.json()["issue"][0]["diagnostics"]
    assert stored() == observations  # the transaction stored nothing
    assert ledger.size() == before + 3  # the PUT, the Bundle and the count


def test_a_refusal_does_not_echo_what_may_be_data(community: Community) -> None:
    h = community.headers("clinic-a")
    for query in ("_sort=王秀英", "王秀英=1", "13912345678=x"):
        r = community.http.get(f"/fhir/Patient?{query}", headers=h)
        assert r.status_code == 400
        assert "王秀英" not in r.text and "13912345678" not in r.text
    r = community.http.get("/fhir/Patient?colour=red", headers=h)
    assert "colour" in r.json()["issue"][0]["diagnostics"]  # a name is echoed, to help


def test_what_an_attacker_tried_is_a_clear_400_or_404(community: Community) -> None:
    h = community.headers("clinic-a")
    r = community.http.get("/fhir/王秀英13912345678", headers=h)
    assert r.status_code == 404 and "王秀英" not in r.text and "13912345678" not in r.text
    many = "&".join(f"code={i}" for i in range(1000))
    assert community.http.get(f"/fhir/Condition?{many}", headers=h).status_code == 400
    assert community.http.get("/fhir/Condition?code=" + ",".join(map(str, range(500))),
                              headers=h).status_code == 400
    for query in ("_type=Condition", "start=2024-01-01", "_since=2024-01-01", "bogus=1"):
        r = community.http.get(f"/fhir/Patient/alice/$everything?{query}", headers=h)
        assert r.status_code == 400, query  # an ignored _type would release more


PUBLIC = ["/fhir/metadata", "/.well-known/smart-configuration",
          "/fhir/.well-known/smart-configuration", "/.well-known/jwks.json",
          "/.well-known/audit-log-key.pem", "/consent/templates", "/"]


@pytest.mark.parametrize("path", PUBLIC)
def test_a_public_read_is_recorded_once_too(community: Community, path: str) -> None:
    """What the exchange publishes to anyone carries no data, but the request reached
    the server: it is in the ledger like every other (#14.2)."""
    ledger = community.services.ledger
    before = ledger.size()
    r = community.http.get(path, headers={"X-Request-ID": "public-1"})
    assert r.status_code == 200
    assert ledger.size() == before + 1
    entry = ledger.read(before + 1)
    assert entry is not None
    assert (entry["action"], entry["outcome"], entry["request_id"]) == (
        "public-read", "success", "public-1")
    assert entry["request"]["path"] == path and entry["who"]["kind"] == "anonymous"


def test_a_drafted_consent_is_recorded_once(community: Community) -> None:
    ledger = community.services.ledger
    before = ledger.size()
    r = community.http.post("/consent/templates/family-clinic/$instantiate",
                            json={"resident": "alice", "organization": "Organization/clinic-a"})
    assert r.status_code == 200, r.text
    assert ledger.size() == before + 1

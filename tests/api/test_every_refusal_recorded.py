"""Every refused request leaves exactly one audit entry, whether the road refused it or
the HTTP layer did before the road began (no such endpoint, a wrong method, a malformed
path, a wrong media type), and the entry is written before the answer leaves."""

import pytest

from tests.community import Community

CASES = [
    ("get", "/no/such/endpoint", None, 404),
    ("get", "/fhir/Observation/alice-glu-0/_history/abc", None, 400),
    ("get", "/compliance/replay/abc", None, 400),
    ("get", "/compliance/summary?days=100000", None, 400),
    ("patch", "/fhir/Observation/alice-glu-0", None, 405),
    ("post", "/fhir/Observation", "text/plain", 415),
    ("get", "/fhir/Observation/no-such", None, 404),       # refused on the road
    ("get", "/fhir/Nonsense/1", None, 404),                # refused on the road
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
    assert entry["status"] == status and entry["outcome"] in ("refused", "not-found")
    assert entry["request"]["path"] == path.split("?")[0]


def test_an_unrecordable_refusal_is_a_503(community: Community,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from exchange.errors import AuditUnavailable

    def broken(*args: object, **kwargs: object) -> None:
        raise AuditUnavailable()

    monkeypatch.setattr(community.services.ledger, "append_many", broken)
    r = community.http.get("/no/such/endpoint")
    assert r.status_code == 503
    assert r.json()["issue"][0]["details"]["coding"][0]["code"] == "audit-unavailable"

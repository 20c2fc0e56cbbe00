"""Every error the exchange can raise renders as a valid FHIR R4 OperationOutcome, with its
own status and issue type, and carries no more than the exchange's own words."""

import orjson
import pytest
from fastapi.testclient import TestClient

from exchange import errors
from exchange.errors import ExchangeError
from exchange.fhir.outcome import render_error
from exchange.fhir.validation import validate_resource
from tests.community import Community

# Issue types of FHIR R4's IssueType value set that an error may carry.
ISSUE_TYPES = {"invalid", "structure", "required", "value", "invariant", "security",
               "login", "unknown", "expired", "forbidden", "suppressed", "processing",
               "not-supported", "duplicate", "multiple-matches", "not-found", "deleted",
               "too-long", "code-invalid", "extension", "too-costly", "business-rule",
               "conflict", "transient", "lock-error", "no-store", "exception", "timeout",
               "incomplete", "throttled", "informational"}


def _every_error_class() -> list[type[ExchangeError]]:
    found: list[type[ExchangeError]] = []
    pending: list[type[ExchangeError]] = [ExchangeError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.__name__)


ERRORS = _every_error_class()


def test_the_hierarchy_is_found_whole() -> None:
    declared = {name for name, value in vars(errors).items()
                if isinstance(value, type) and issubclass(value, ExchangeError)}
    assert declared <= {c.__name__ for c in ERRORS}
    assert len(ERRORS) >= 15


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_every_error_class_renders_a_valid_operation_outcome(cls: type[ExchangeError]) -> None:
    error = cls()
    body = orjson.loads(render_error(error, "corr-1"))
    validate_resource(body, expected_type="OperationOutcome")
    issue = body["issue"][0]
    assert issue["severity"] in ("error", "fatal")
    assert issue["code"] == cls.issue_type and cls.issue_type in ISSUE_TYPES
    assert issue["details"]["coding"][0]["code"] == cls.code
    assert 400 <= cls.status <= 599
    assert "corr-1" in orjson.dumps(body).decode()


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_every_error_class_answers_with_its_status_over_http(community: Community,
                                                             cls: type[ExchangeError],
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """Raised from deep inside the road, the error reaches the client as its own status
    and a FHIR OperationOutcome, and the call is still recorded."""
    headers = community.headers("clinic-a")

    def fail(*args: object, **kwargs: object) -> None:
        raise cls()

    monkeypatch.setattr(community.services.repository, "read", fail)
    ledger = community.services.ledger
    before = ledger.size()
    http: TestClient = community.http
    r = http.get("/fhir/Patient/alice", headers=headers)
    assert r.status_code == cls.status
    assert r.headers["content-type"].startswith("application/fhir+json")
    validate_resource(r.json(), expected_type="OperationOutcome")
    assert r.json()["issue"][0]["details"]["coding"][0]["code"] == cls.code
    if cls is not errors.AuditUnavailable:
        assert ledger.size() == before + 1

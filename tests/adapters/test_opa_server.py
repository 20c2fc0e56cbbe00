"""The OPA decision point, against a stand-in that speaks OPA's Data API (tests/opa_standin.py
says why it is a stand-in), and its contract with the embedded engine."""

import json
import socket
import time
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

from adapters.opa_server import OpaDecisionPoint
from adapters.rego_embedded import RegoDecisionPoint
from exchange.config import Settings
from exchange.decisions.bundle import DECISION, TOKEN_GRANT
from exchange.errors import PolicyUnavailable
from tests.community import build_community
from tests.decision_inputs import generate
from tests.opa_standin import OpaStandIn

POLICIES = Settings().policy_dir


@pytest.fixture(scope="module")
def standin():
    with OpaStandIn(POLICIES) as server:
        yield server


def test_both_decision_points_agree_on_500_generated_inputs(standin: OpaStandIn) -> None:
    schema = json.loads((POLICIES / "exchange" / "input.schema.json").read_text())
    embedded = RegoDecisionPoint(POLICIES)
    opa = OpaDecisionPoint(standin.url, POLICIES, timeout_seconds=5)
    assert opa.revision == embedded.revision
    inputs = generate(seed=2026, n=500)
    allowed = Counter()
    for policy_input in inputs:
        jsonschema.validate(policy_input, schema)
        a = embedded.decide(DECISION, policy_input)
        b = opa.decide(DECISION, policy_input)
        assert a == b, policy_input
        allowed[a["allow"]] += 1
    # The corpus exercises both answers, not just denials (allowed: about one in ten,
    # since the hub is refused records it only derives facts from).
    assert allowed[True] >= 30 and allowed[False] >= 30


def test_token_grants_agree(standin: OpaStandIn) -> None:
    embedded = RegoDecisionPoint(POLICIES)
    opa = OpaDecisionPoint(standin.url, POLICIES)
    grant_input = {"client": {"active": True, "purposes": ["TREAT"], "client_id": "c",
                              "organization_kind": "clinic",
                              "scopes": [{"context": "system", "resource_type": "*",
                                          "interactions": "rs"}]},
                   "purpose": "TREAT",
                   "requested_scopes": [{"text": "system/Patient.rs", "context": "system",
                                         "resource_type": "Patient", "interactions": "rs"}]}
    assert embedded.decide(TOKEN_GRANT, grant_input) == opa.decide(TOKEN_GRANT, grant_input)


@pytest.mark.parametrize("fault", ["undefined", "error", "slow", "not-object"])
def test_opa_faults_are_policy_unavailable(standin: OpaStandIn, fault: str) -> None:
    opa = OpaDecisionPoint(standin.url, POLICIES, timeout_seconds=0.5)
    standin.fault = fault
    try:
        with pytest.raises(PolicyUnavailable):
            opa.decide(DECISION, generate(1, 1)[0])
    finally:
        standin.fault = None


@pytest.mark.parametrize("fault", ["slow", "trickle"])
def test_the_timeout_bounds_the_whole_call(standin: OpaStandIn, fault: str) -> None:
    """A server that answers a byte at a time passes every per-read timeout; the
    decision point still gives up within its timeout for the whole call."""
    opa = OpaDecisionPoint(standin.url, POLICIES, timeout_seconds=0.5)
    standin.fault = fault
    try:
        started = time.monotonic()
        with pytest.raises(PolicyUnavailable):
            opa.decide(DECISION, generate(1, 1)[0])
        assert time.monotonic() - started < 0.9
    finally:
        standin.fault = None


def test_unreachable_opa_is_policy_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    opa = OpaDecisionPoint(f"http://127.0.0.1:{port}", POLICIES, timeout_seconds=0.5)
    with pytest.raises(PolicyUnavailable):
        opa.decide(DECISION, generate(1, 1)[0])


def test_the_exchange_runs_on_an_opa_server(standin: OpaStandIn, tmp_path: Path) -> None:
    community = build_community(tmp_path, decision_point="opa", opa_url=standin.url)
    assert isinstance(community.services.decision_point, OpaDecisionPoint)
    before = standin.requests
    headers = community.headers("clinic-a")
    assert community.http.get("/fhir/Patient/alice", headers=headers).status_code == 200
    assert community.http.get("/fhir/Patient/bob", headers=headers).status_code == 404
    assert standin.requests > before
    standin.fault = "error"
    try:
        # A decision not yet cached needs OPA, and OPA fails: denial.
        r = community.http.get("/fhir/Observation/alice-glu-0", headers=headers)
        assert r.status_code == 503 and "5.4" not in r.text
    finally:
        standin.fault = None

"""The Rego policies' own tests, run by the embedded engine, and the bundle's contract."""

import json
import re
import shutil
from pathlib import Path

import pytest

from adapters.rego_embedded import RegoDecisionPoint
from exchange.config import Settings
from exchange.decisions.bundle import load_bundle
from exchange.decisions.rego_tests import run_rego_tests

POLICIES = Settings().policy_dir
RESULTS = run_rego_tests(POLICIES)


def test_policy_bundle_has_tests() -> None:
    assert len(RESULTS) >= 25


@pytest.mark.parametrize("result", RESULTS, ids=[r.name for r in RESULTS])
def test_rego(result) -> None:
    assert result.passed, result.detail


def test_a_failing_rego_test_is_reported(tmp_path: Path) -> None:
    shutil.copytree(POLICIES, tmp_path / "policies")
    (tmp_path / "policies" / "exchange" / "broken_test.rego").write_text(
        "package exchange.broken_test\n\nimport rego.v1\n\nimport data.exchange\n\n"
        'test_wrong if exchange.decision.allow with input as {"action": "read", '
        '"resource_types": ["Observation"], "requester": {"kind": "robot", "scopes": []}, '
        '"resident": "p", "consents": [], "now": 0}\n')
    results = {r.name: r for r in run_rego_tests(tmp_path / "policies")}
    assert not results["exchange.broken_test.test_wrong"].passed


def test_revision_moves_with_any_rule_or_data_change(tmp_path: Path) -> None:
    shutil.copytree(POLICIES, tmp_path / "p")
    before = load_bundle(tmp_path / "p").revision
    data_file = tmp_path / "p" / "exchange" / "static" / "data.json"
    data = json.loads(data_file.read_text())
    data["purposes"]["TREAT"]["fields"]["Claim"] = ["*"]
    data_file.write_text(json.dumps(data))
    assert load_bundle(tmp_path / "p").revision != before
    test_file = tmp_path / "p" / "exchange" / "decision_test.rego"
    middle = load_bundle(tmp_path / "p").revision
    test_file.write_text(test_file.read_text() + "\n# a comment in a test\n")
    assert load_bundle(tmp_path / "p").revision == middle  # tests are not policy


def test_policy_data_change_changes_decisions(tmp_path: Path) -> None:
    """Minimization is policy data: editing the JSON, not Python, changes what leaves."""
    shutil.copytree(POLICIES, tmp_path / "p")
    request = {"action": "read", "resource_types": ["Claim"],
               "requester": {"kind": "client", "client_id": "c", "organization": "Organization/a",
                             "organization_kind": "clinic", "purpose": "TREAT",
                             "scopes": [{"context": "system", "resource_type": "*",
                                         "interactions": "rs"}]},
               "resident": "p", "now": 0,
               "consents": [{"id": "Consent/1", "version": "1", "status": "active",
                             "period": {"start": None, "end": None},
                             "provision": {"type": "permit", "actors": ["Organization/a"],
                                           "purposes": ["TREAT"], "classes": [],
                                           "period": {"start": None, "end": None},
                                           "provisions": []}}]}
    assert not RegoDecisionPoint(tmp_path / "p").decide("data.exchange.decision",
                                                        request)["allow"]
    data_file = tmp_path / "p" / "exchange" / "static" / "data.json"
    data = json.loads(data_file.read_text())
    data["purposes"]["TREAT"]["fields"]["Claim"] = ["*"]
    data_file.write_text(json.dumps(data))
    assert RegoDecisionPoint(tmp_path / "p").decide("data.exchange.decision", request)["allow"]


def test_decider_inputs_follow_the_published_schema(community) -> None:
    import jsonschema

    schema = json.loads((POLICIES / "exchange" / "input.schema.json").read_text())
    decider = community.services.decider
    who = community.services.tokens.authenticate(community.token("clinic-a"))
    for resident in ("alice", "bob", "carol", None):
        jsonschema.validate(decider.policy_input(who, "search", ["Observation"], resident),
                            schema)
    me = community.services.tokens.authenticate(community.services.tokens.issue_resident("bob"))
    jsonschema.validate(decider.policy_input(me, "create", ["Consent"], "bob"), schema)


def test_every_reason_a_decision_gives_is_explained_in_its_rule_metadata() -> None:
    from tests.decision_inputs import generate

    bundle = load_bundle(POLICIES)
    catalogue = bundle.reasons
    rules = {code for _path, source in bundle.modules
             for code in re.findall(r'^(?:reasons|refusals) contains "([a-z_]+)"', source,
                                    flags=re.M)}
    assert rules == set(catalogue), "each reason rule carries a METADATA block with its code"
    assert all(text["en"] and text["zh"] for text in catalogue.values())
    point = RegoDecisionPoint(POLICIES)
    given = {r for i in generate(seed=7, n=300)
             for r in point.decide("data.exchange.decision", i)["reasons"]}
    assert len(given) >= 10 and given <= set(catalogue)

"""The embedded decision point: the RVM's instruction budget never turns a resident with a
lifetime of consents, or a request for every type, into a 503."""

import copy
import json
from pathlib import Path

import orjson
import pytest
import regorus

from adapters.rego_embedded import RegoDecisionPoint
from consent.model import build_consent
from exchange.config import Settings
from exchange.decisions.bundle import DECISION, load_bundle
from tests.community import build_community, observation
from tests.decision_inputs import generate

POLICIES = Settings().policy_dir


def _interpreter() -> regorus.Engine:
    bundle = load_bundle(POLICIES)
    engine = regorus.Engine()
    for name, text in bundle.modules:
        engine.add_policy(name, text)
    engine.add_data_json(json.dumps(bundle.data))
    return engine


def _lifetime(policy_input: dict, n: int) -> dict:
    """The input with its consents repeated to ``n``, each a consent of its own."""
    grown = copy.deepcopy(policy_input)
    consents = grown["consents"]
    grown["consents"] = [dict(consents[i % len(consents)], id=f"Consent/c{i}")
                         for i in range(n)]
    return grown


def test_answers_past_the_instruction_budget_are_the_interpreters() -> None:
    point = RegoDecisionPoint(POLICIES)
    engine = _interpreter()
    inputs = [i for i in generate(seed=7, n=80) if i["consents"]][:25]
    for policy_input in inputs:
        for n in (1, 60, 300):
            grown = _lifetime(policy_input, n)
            engine.set_input_json(orjson.dumps(grown).decode())
            assert point.decide(DECISION, grown) == engine.eval_rule(DECISION), (n, grown)
    # The large inputs went past the RVM's budget; the small ones stayed on it.
    assert 0 < point.interpreted < len(inputs) * 3


def test_small_inputs_stay_on_the_compiled_program() -> None:
    point = RegoDecisionPoint(POLICIES)
    for policy_input in generate(seed=8, n=50):
        point.decide(DECISION, policy_input)
    assert point.interpreted == 0


def test_a_resident_with_a_lifetime_of_consents_is_served(tmp_path: Path) -> None:
    community = build_community(tmp_path)
    now = community.clock.now()
    # Twenty years of consents: to clinics, the insurer and the hub, many since withdrawn.
    consents = []
    for i in range(150):
        org = ("Organization/clinic-b", "Organization/insurer", "Organization/hub")[i % 3]
        consents.append({**build_consent("carol", org, ["TREAT", "HPAYMT", "CAREMGT"],
                                         status="inactive" if i % 2 else "active", when=now),
                         "id": f"carol-{i}"})
    consents.append({**build_consent("carol", "Organization/clinic-a", ["TREAT"], when=now),
                     "id": "carol-treat-a"})
    community.services.repository.ingest(consents)
    community.services.repository.ingest(
        [observation("carol-bp", "carol", "85354-9", "2025-01-02T08:00:00+08:00", 130)])
    headers = community.headers("clinic-a")
    r = community.http.get("/fhir/Observation/carol-bp", headers=headers)
    assert r.status_code == 200, r.text
    r = community.http.get("/fhir/Patient/carol/$everything", headers=headers)
    assert r.status_code == 200, r.text
    assert {e["resource"]["id"] for e in r.json()["entry"]} >= {"carol", "carol-bp"}
    # clinic-b is named by a third of them, and half of those are in force.
    r = community.http.get("/fhir/Observation/carol-bp", headers=community.headers("clinic-b"))
    assert r.status_code == 200


def test_the_timeout_bounds_an_evaluation_past_the_budget() -> None:
    """The interpreter runs in a worker process, so a deadline can end it: a huge input is a
    503 within the timeout, and the next decision is answered as before."""
    import time

    from exchange.errors import PolicyUnavailable

    point = RegoDecisionPoint(POLICIES, timeout_seconds=0.3)
    try:
        policy_input = next(i for i in generate(seed=7, n=80) if i["consents"])
        point.decide(DECISION, _lifetime(policy_input, 2000))  # the worker is started
        huge = _lifetime(policy_input, 30_000)
        started = time.monotonic()
        with pytest.raises(PolicyUnavailable):
            point.decide(DECISION, huge)
        # the timeout, and room to serialize the input and end the worker on a busy machine
        assert time.monotonic() - started < 0.3 + 1.0
        engine = _interpreter()
        big = _lifetime(policy_input, 1000)
        engine.set_input_json(orjson.dumps(big).decode())
        assert point.decide(DECISION, big) == engine.eval_rule(DECISION)
    finally:
        point.close()

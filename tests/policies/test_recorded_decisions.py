"""The policies answer every decision the test suite recorded exactly as they did then.

``decisions.jsonl.gz`` holds each distinct (entry point, input) the whole suite asked for,
with its answer, recorded by ``record_decisions.py`` before the policies were split into
one package per concern. A change to the policies that is meant to change decisions
re-records it (``replay_decisions.py`` says how) and says so in its commit.
"""

from pathlib import Path

from exchange.config import Settings
from tests.policies.replay_decisions import canonical, differences, read

CORPUS = Path(__file__).with_name("decisions.jsonl.gz")


def test_every_recorded_decision_is_answered_the_same() -> None:
    corpus = read([CORPUS])
    # the decision, the labels on the way in, the labels that reach dependents, token grants
    assert len({r.entry_point for r in corpus}) == 4 and len(corpus) > 1000
    found = differences(corpus, Settings().policy_dir)
    assert not found, [(engine, r.entry_point, canonical(r.input)[:500])
                       for engine, r, _ in found[:3]]

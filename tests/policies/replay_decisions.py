"""Replay recorded policy decisions against a policy bundle; build the committed corpus.

    # record the suite's decisions (record_decisions.py), then keep the distinct ones
    python -m tests.policies.replay_decisions --write tests/policies/decisions.jsonl.gz \\
        decisions.gw0.jsonl decisions.gw1.jsonl
    # replay a corpus or raw recordings against policies/ (or --policies DIR)
    python -m tests.policies.replay_decisions tests/policies/decisions.jsonl.gz
    # and compare with another bundle (an old checkout) on generated inputs too
    python -m tests.policies.replay_decisions tests/policies/decisions.jsonl.gz \\
        --compare-with OLD/policies --generated 20000

A corpus line is ``{"entry_point", "input", "output"}`` in canonical JSON (sorted keys),
one per distinct (entry point, input), sorted. Only decisions of the repository's own
bundle (``canonical``) are kept; recordings that disagree with themselves are refused.
Replay evaluates every input with both of regorus's engines, the RVM the embedded decision
point runs and the interpreter the OPA stand-in runs, and compares whole answers: a
decision's answer holds no policy revision (the decision point adds it), so nothing is
left out of the comparison.
"""

import argparse
import gzip
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import regorus

from adapters.rego_embedded import RegoDecisionPoint
from exchange.config import Settings
from exchange.decisions.bundle import DECISION, load_bundle
from exchange.errors import PolicyUnavailable


@dataclass(frozen=True)
class Recorded:
    entry_point: str
    input: Any
    output: Any  # None when the decision point refused to answer (PolicyUnavailable)


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as file:
        for line in file:
            if line.strip():
                yield orjson.loads(line)


def read(paths: Iterable[Path]) -> list[Recorded]:
    """The distinct canonical decisions of recordings or corpora, sorted."""
    seen: dict[tuple[str, bytes], Recorded] = {}
    for path in paths:
        for line in _lines(path):
            if not line.get("canonical", True):
                continue  # a test's edited copy of the policies
            output = line.get("output")
            key = (line["entry_point"], canonical(line["input"]))
            earlier = seen.setdefault(key, Recorded(line["entry_point"], line["input"], output))
            if canonical(earlier.output) != canonical(output):
                raise ValueError(f"{line['entry_point']}: one input, two recorded answers")
    return [seen[k] for k in sorted(seen)]


def write(corpus: list[Recorded], path: Path) -> None:
    text = b"".join(canonical({"entry_point": r.entry_point, "input": r.input,
                               "output": r.output}) + b"\n" for r in corpus)
    path.write_bytes(gzip.compress(text, compresslevel=9, mtime=0))


class Interpreter:
    """The bundle in regorus's interpreter, as the OPA stand-in evaluates it."""

    def __init__(self, policy_dir: Path) -> None:
        bundle = load_bundle(policy_dir)
        self.engine = regorus.Engine()
        for path, source in bundle.modules:
            self.engine.add_policy(path, source)
        self.engine.add_data_json(json.dumps(bundle.data))

    def decide(self, entry_point: str, policy_input: Any) -> Any:
        self.engine.set_input_json(json.dumps(policy_input))
        try:
            return self.engine.eval_rule(entry_point)
        except RuntimeError:
            return None


def _answer(point: RegoDecisionPoint, entry_point: str, policy_input: Any) -> Any:
    try:
        return point.decide(entry_point, policy_input)
    except PolicyUnavailable:
        return None


def differences(corpus: list[Recorded], policy_dir: Path) -> list[tuple[str, Recorded, Any]]:
    """Each recorded decision whose answer differs under the bundle at ``policy_dir``:
    (engine, recorded, answer now). Empty when every answer is identical."""
    rvm, interpreter = RegoDecisionPoint(policy_dir), Interpreter(policy_dir)
    found = []
    for recorded in corpus:
        want = canonical(recorded.output)
        now = _answer(rvm, recorded.entry_point, recorded.input)
        if canonical(now) != want:
            found.append(("rvm", recorded, now))
        now = interpreter.decide(recorded.entry_point, recorded.input)
        if recorded.output is not None and canonical(now) != want:
            found.append(("interpreter", recorded, now))
    return found


def compare(policy_dir: Path, other: Path, seeds: Iterable[int], n: int) -> tuple[int, int]:
    """Decide ``n`` generated inputs per seed (tests/decision_inputs.py) under both bundles,
    on both engines: (distinct inputs, identical answers)."""
    from tests.decision_inputs import generate

    inputs = {canonical(i): i for seed in seeds for i in generate(seed=seed, n=n)}
    engines = [(RegoDecisionPoint(policy_dir), RegoDecisionPoint(other)),
               (Interpreter(policy_dir), Interpreter(other))]
    same = 0
    for policy_input in inputs.values():
        answers = {canonical(engine.decide(DECISION, policy_input))
                   for pair in engines for engine in pair}
        same += len(answers) == 1
    return len(inputs), same


def microseconds_each(corpus: list[Recorded], policy_dir: Path, rounds: int) -> float:
    """Mean RVM time per decision over the corpus, best of ``rounds`` passes."""
    point = RegoDecisionPoint(policy_dir)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for recorded in corpus:
            _answer(point, recorded.entry_point, recorded.input)
        best = min(best, time.perf_counter() - start)
    return best / len(corpus) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recordings", nargs="+", type=Path)
    parser.add_argument("--policies", type=Path, default=Settings().policy_dir)
    parser.add_argument("--write", type=Path, help="keep the distinct decisions as a corpus")
    parser.add_argument("--compare-with", type=Path, metavar="DIR",
                        help="another bundle to decide generated inputs with")
    parser.add_argument("--generated", type=int, default=10_000,
                        help="generated inputs for --compare-with (over ten seeds)")
    parser.add_argument("--time", type=int, default=0, metavar="ROUNDS",
                        help="also time the RVM over the corpus (best of ROUNDS passes)")
    args = parser.parse_args(argv)
    corpus = read(args.recordings)
    print("distinct inputs:", dict(Counter(r.entry_point for r in corpus)), len(corpus))
    if args.write:
        write(corpus, args.write)
        print(f"wrote {args.write} ({args.write.stat().st_size} bytes)")
    found = differences(corpus, args.policies)
    differing = {(r.entry_point, canonical(r.input)) for _, r, _ in found}
    print(f"identical under {args.policies.name}/ (both engines): "
          f"{len(corpus) - len(differing)} of {len(corpus)}")
    for engine, recorded, now in found[:5]:
        print(f"  {engine} {recorded.entry_point}: recorded {canonical(recorded.output)[:300]!r}"
              f" now {canonical(now)[:300]!r}")
    alike = True
    if args.compare_with:
        total, same = compare(args.policies, args.compare_with, range(1, 11),
                              max(1, args.generated // 10))
        print(f"generated inputs answered alike by {args.policies.name}/ and "
              f"{args.compare_with.name}/ (both engines): {same} of {total}")
        alike = same == total
    if args.time:
        print(f"RVM: {microseconds_each(corpus, args.policies, args.time):.1f} µs per decision")
    return 0 if alike and not found else 1


if __name__ == "__main__":
    sys.exit(main())

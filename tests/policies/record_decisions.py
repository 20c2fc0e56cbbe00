"""A pytest plugin that records every policy decision the tests ask for.

    EXCHANGE_RECORD_DECISIONS=decisions.jsonl \\
        python -m pytest -n 2 -p tests.policies.record_decisions

It wraps both ways the tests evaluate the bundle: the embedded decision point
(``RegoDecisionPoint.decide``, regorus's RVM) and the OPA stand-in
(``OpaStandIn.evaluate``, regorus's interpreter). Each evaluation is appended as one
canonical JSON line (sorted keys) to ``<file>.<worker>.jsonl``, one file per xdist worker
(``gw0``, ``gw1``; ``main`` without xdist):

    {"engine", "entry_point", "input", "output" | "error", "revision", "canonical"}

``canonical`` says whether the bundle evaluated was the repository's own (its revision is
that of ``Settings().policy_dir`` when the run began): tests that edit a copy of the
policies record too, but a replay compares only canonical decisions. Without the variable
the plugin does nothing. ``replay_decisions.py`` beside it replays a recording.
"""

import os
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

ENV = "EXCHANGE_RECORD_DECISIONS"


class Recorder:
    def __init__(self, path: Path, canonical_revision: str) -> None:
        self.path = path
        self.canonical_revision = canonical_revision
        self._lock = threading.Lock()
        self._file: Any = None

    def record(self, engine: str, entry_point: str, policy_input: Any, revision: str,
               output: Any = None, error: str | None = None) -> None:
        line: dict[str, Any] = {"engine": engine, "entry_point": entry_point,
                                "input": policy_input, "revision": revision,
                                "canonical": revision == self.canonical_revision}
        if error is None:
            line["output"] = output
        else:
            line["error"] = error
        try:
            text = orjson.dumps(line, option=orjson.OPT_SORT_KEYS) + b"\n"
        except TypeError:
            return  # an input that is not JSON (a fault test's): nothing to replay
        with self._lock:
            if self._file is None:
                self._file = self.path.open("ab")
            self._file.write(text)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


_recorder: Recorder | None = None


def _install(recorder: Recorder) -> None:
    from adapters.rego_embedded import RegoDecisionPoint
    from exchange.errors import PolicyUnavailable
    from tests.opa_standin import OpaStandIn

    embedded = RegoDecisionPoint.decide

    def decide(self: RegoDecisionPoint, entry_point: str,
               policy_input: dict[str, Any]) -> dict[str, Any]:
        try:
            output = embedded(self, entry_point, policy_input)
        except PolicyUnavailable as exc:
            recorder.record("rvm", entry_point, policy_input, self.revision,
                            error=type(exc).__name__)
            raise
        recorder.record("rvm", entry_point, policy_input, self.revision, output=output)
        return output

    standin = OpaStandIn.evaluate

    def evaluate(self: OpaStandIn, rule: str, policy_input: Any) -> Any:
        output = standin(self, rule, policy_input)
        recorder.record("interpreter", rule, policy_input, self.bundle.revision,
                        output=output)
        return output

    RegoDecisionPoint.decide = decide  # type: ignore[method-assign]
    OpaStandIn.evaluate = evaluate  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    global _recorder
    target = os.environ.get(ENV)
    if not target:
        return
    from exchange.config import Settings
    from exchange.decisions.bundle import load_bundle

    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    base = Path(target)
    path = base.with_name(f"{base.name}.{worker}.jsonl")
    _recorder = Recorder(path, load_bundle(Settings().policy_dir).revision)
    _install(_recorder)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _recorder is not None:
        _recorder.close()

"""The embedded decision point: Microsoft regorus, in process.

The bundle is compiled once per policy revision into an RVM program. regorus objects are
bound to the thread that made them, so the compiled program is kept as bytes and each
thread loads it into a VM of its own. Any engine error, a Rust panic included, is
``PolicyUnavailable``: the road then denies.

The RVM stops every evaluation after a fixed budget of instructions (25,000 in this
binding, which offers no way to change it). That bounds the work of a decision, but a
resident with a lifetime of consents, or a request for every type of the record, needs
more: the answer would be a 503 for that resident forever. So an evaluation that runs out
of budget is evaluated again, from the same bundle, by regorus' interpreter, which has no
budget and gives the same answers (``tests/adapters`` holds both to that). The RVM stays
the common path: it is about four times faster.

Neither engine can be interrupted from Python: regorus holds the interpreter lock while it
evaluates, so a timer cannot fire until it returns. What bounds an embedded decision is
the size of its input, not a clock; the OPA adapter is the one with a deadline.
"""

import json
import threading
from pathlib import Path
from typing import Any

import orjson
import regorus

from exchange.decisions.bundle import ENTRY_POINTS, PolicyBundle, load_bundle
from exchange.errors import PolicyUnavailable

# The message regorus gives when the RVM's instruction budget runs out; the binding raises
# a plain RuntimeError, so the text is all there is to tell it from a real failure.
_OUT_OF_BUDGET = "exceeded maximum instruction limit"


class RegoDecisionPoint:
    def __init__(self, policy_dir: Path) -> None:
        try:
            self._bundle = load_bundle(policy_dir)
            self._data_json = json.dumps(self._bundle.data)
            program = regorus.Program.compile_from_modules(
                self._data_json, list(self._bundle.modules), list(ENTRY_POINTS))
            self._program = bytes(program.serialize_binary())
        except (OSError, ValueError, RuntimeError) as exc:
            raise PolicyUnavailable("The policies could not be compiled.") from exc
        self._local = threading.local()
        self.interpreted = 0  # evaluations the RVM's budget could not hold

    @property
    def revision(self) -> str:
        return self._bundle.revision

    @property
    def bundle(self) -> PolicyBundle:
        return self._bundle

    def decide(self, entry_point: str, policy_input: dict[str, Any]) -> dict[str, Any]:
        input_json = orjson.dumps(policy_input).decode()
        try:
            try:
                answer = self._vm().execute_entry_point_json(entry_point, input_json)
            except RuntimeError as exc:
                if _OUT_OF_BUDGET not in str(exc):
                    raise
                self.interpreted += 1
                answer = self._interpret(entry_point, input_json)
            result = orjson.loads(answer)
        except BaseException as exc:  # a pyo3 PanicException is a BaseException
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            self._local.vm = None  # an engine that failed mid-run is not reused
            self._local.engine = None
            raise PolicyUnavailable() from exc
        if not isinstance(result, dict):
            raise PolicyUnavailable()
        return result

    def _vm(self) -> "_Vm":
        vm: _Vm | None = getattr(self._local, "vm", None)
        if vm is None:
            vm = _Vm(self._program, self._data_json)
            self._local.vm = vm
        return vm

    def _interpret(self, entry_point: str, input_json: str) -> str:
        engine = getattr(self._local, "engine", None)
        if engine is None:
            engine = regorus.Engine()
            for name, text in self._bundle.modules:
                engine.add_policy(name, text)
            engine.add_data_json(self._data_json)
            self._local.engine = engine
        engine.set_input_json(input_json)
        return str(engine.eval_rule_as_json(entry_point))


class _Vm:
    """One thread's RVM, loaded with the compiled program and the policy data."""

    def __init__(self, program: bytes, data_json: str) -> None:
        self._vm = regorus.Rvm()
        # deserialize_binary answers (program, is_partial); a partial one is unusable.
        loaded, partial = regorus.Program.deserialize_binary(program)
        if partial:
            raise PolicyUnavailable("The compiled policy program is incomplete.")
        self._vm.load_program(loaded)
        self._vm.set_data_json(data_json)

    def execute_entry_point_json(self, entry_point: str, input_json: str) -> str:
        self._vm.set_input_json(input_json)
        return str(self._vm.execute_entry_point(entry_point))

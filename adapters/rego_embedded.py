"""The embedded decision point: Microsoft regorus, in process.

The bundle is compiled once per policy revision into an RVM program. regorus objects are
bound to the thread that made them, so the compiled program is kept as bytes and each
thread loads it into a VM of its own. Any engine error, a Rust panic included, is
``PolicyUnavailable``: the road then denies.
"""

import json
import threading
from pathlib import Path
from typing import Any

import orjson
import regorus

from exchange.decisions.bundle import ENTRY_POINTS, PolicyBundle, load_bundle
from exchange.errors import PolicyUnavailable


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

    @property
    def revision(self) -> str:
        return self._bundle.revision

    @property
    def bundle(self) -> PolicyBundle:
        return self._bundle

    def decide(self, entry_point: str, policy_input: dict[str, Any]) -> dict[str, Any]:
        vm = getattr(self._local, "vm", None)
        try:
            if vm is None:
                vm = regorus.Rvm()
                # deserialize_binary answers (program, is_partial); a partial one is unusable.
                program, partial = regorus.Program.deserialize_binary(self._program)
                if partial:
                    raise PolicyUnavailable("The compiled policy program is incomplete.")
                vm.load_program(program)
                vm.set_data_json(self._data_json)
                self._local.vm = vm
            vm.set_input_json(orjson.dumps(policy_input).decode())
            result = orjson.loads(vm.execute_entry_point(entry_point))
        except BaseException as exc:  # a pyo3 PanicException is a BaseException
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            self._local.vm = None  # a VM that failed mid-run is not reused
            raise PolicyUnavailable() from exc
        if not isinstance(result, dict):
            raise PolicyUnavailable()
        return result

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

regorus holds Python's interpreter lock while it evaluates, so no timer in this process
can stop it. The interpreter, the one path without a bound of its own, therefore runs in a
worker process: the call waits at most ``timeout_seconds`` and then ends the worker, and
the answer is ``PolicyUnavailable``. Waiting does not hold the lock, so a huge input slows
its own request only. The RVM path is bounded by its budget and by the size of what it
reads (at most ``IN_PROCESS_BYTES``; more goes to the worker): milliseconds.
"""

import contextlib
import json
import os
import selectors
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import orjson
import regorus

from exchange.decisions.bundle import ENTRY_POINTS, BundleWatch, PolicyBundle, load_bundle
from exchange.errors import PolicyUnavailable

# The message regorus gives when the RVM's instruction budget runs out; the binding raises
# a plain RuntimeError, so the text is all there is to tell it from a real failure.
_OUT_OF_BUDGET = "exceeded maximum instruction limit"


class RegoDecisionPoint:
    # Reading an input into the RVM holds the lock too (about 30 ms a megabyte): a larger
    # input goes to the worker at once, where the deadline holds.
    IN_PROCESS_BYTES = 1 << 20

    def __init__(self, policy_dir: Path, timeout_seconds: float = 2.0,
                 watch_seconds: float = 1.0) -> None:
        try:
            self._watch = BundleWatch(policy_dir, watch_seconds)
            self._bundle = load_bundle(policy_dir)
            self._data_json = json.dumps(self._bundle.data)
            program = regorus.Program.compile_from_modules(
                self._data_json, list(self._bundle.modules), list(ENTRY_POINTS))
            self._program = bytes(program.serialize_binary())
        except (OSError, ValueError, RuntimeError) as exc:
            raise PolicyUnavailable("The policies could not be compiled.") from exc
        self._local = threading.local()
        self._interpreter = _Interpreter(policy_dir, self._bundle.revision, timeout_seconds)
        self.interpreted = 0  # evaluations the RVM's budget could not hold

    @property
    def revision(self) -> str:
        # Every decision, cached ones too, is keyed by the revision: asking for it is where
        # a bundle changed on disk stops them all.
        self._intact()
        return self._bundle.revision

    def _intact(self) -> None:
        if not self._watch.check():
            raise PolicyUnavailable("The policy files changed or became unreadable while "
                                    "serving; restart the exchange to load them.")

    @property
    def bundle(self) -> PolicyBundle:
        return self._bundle

    def decide(self, entry_point: str, policy_input: dict[str, Any]) -> dict[str, Any]:
        self._intact()
        input_json = orjson.dumps(policy_input).decode()
        try:
            try:
                if len(input_json) > self.IN_PROCESS_BYTES:
                    raise RuntimeError(_OUT_OF_BUDGET)  # too big to read under the lock
                answer = self._vm().execute_entry_point_json(entry_point, input_json)
            except RuntimeError as exc:
                if _OUT_OF_BUDGET not in str(exc):
                    raise
                self.interpreted += 1
                answer = self._interpreter.evaluate(entry_point, input_json)
            result = orjson.loads(answer)
        except BaseException as exc:  # a pyo3 PanicException is a BaseException
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            self._local.vm = None  # an engine that failed mid-run is not reused
            if isinstance(exc, PolicyUnavailable):
                raise
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

    def close(self) -> None:
        self._interpreter.close()


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


class _Interpreter:
    """regorus' interpreter in one worker process (``adapters/rego_worker.py``), started
    when first needed, ended (and started afresh next time) when an evaluation outlives
    the timeout. Its own process, not ``multiprocessing``: nothing of the caller's main
    module is imported again, whatever program embeds the exchange."""

    STARTUP_SECONDS = 60.0  # starting a worker is not the evaluation's time

    def __init__(self, policy_dir: Path, revision: str, timeout_seconds: float) -> None:
        self._policy_dir = policy_dir
        self._revision = revision
        self._timeout = timeout_seconds
        self._worker: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # one evaluation at a time: the worker has one engine
        self._finalizer: weakref.finalize | None = None

    def evaluate(self, entry_point: str, input_json: str) -> str:
        if not self._lock.acquire(timeout=self._timeout):
            raise PolicyUnavailable("The policy engine is busy.")
        try:
            worker = self._started()
            deadline = time.monotonic() + self._timeout  # sending counts, not only answering
            try:
                send_frame(worker, orjson.dumps({"entry_point": entry_point,
                                                 "input": input_json}), deadline)
                answer = read_frame(worker, deadline)
            except (OSError, ValueError, TimeoutError) as exc:
                self.close()  # still evaluating, or gone: end it
                raise PolicyUnavailable("The policy engine did not answer in time.") from exc
            if not answer.startswith(b"{"):
                raise PolicyUnavailable("The policy engine could not evaluate the input.")
            return answer.decode()
        finally:
            self._lock.release()

    def _started(self) -> "subprocess.Popen[bytes]":
        if self._worker is None or self._worker.poll() is not None:
            worker = subprocess.Popen(  # noqa: S603 (this interpreter, our module, a path)
                [sys.executable, "-m", "adapters.rego_worker", str(self._policy_dir)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            self._finalizer = weakref.finalize(self, _end, worker)
            try:
                ready = read_frame(worker, time.monotonic() + self.STARTUP_SECONDS)
            except (OSError, ValueError, TimeoutError) as exc:
                _end(worker)
                raise PolicyUnavailable("The policy engine could not start.") from exc
            if ready.decode() != self._revision:
                _end(worker)
                raise PolicyUnavailable("The policy engine loaded another policy revision.")
            self._worker = worker
        return self._worker

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # ends the worker, once
        self._worker = None
        self._finalizer = None


def _end(worker: "subprocess.Popen[bytes]") -> None:
    worker.kill()
    worker.wait()
    for pipe in (worker.stdin, worker.stdout):
        if pipe is not None:
            pipe.close()


def frame(payload: bytes) -> bytes:
    """A message on the worker's pipes: its length, then its bytes."""
    return len(payload).to_bytes(8, "big") + payload


def send_frame(worker: "subprocess.Popen[bytes]", payload: bytes, deadline: float) -> None:
    """Write one message to the worker, or ``TimeoutError`` once ``deadline`` has passed."""
    assert worker.stdin is not None
    fd = worker.stdin.fileno()
    os.set_blocking(fd, False)  # a write never waits past the deadline for a stuck worker
    data = memoryview(frame(payload))
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_WRITE)
        while data:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise TimeoutError()
            with contextlib.suppress(BlockingIOError):
                data = data[os.write(fd, data[:65536]):]


def read_frame(worker: "subprocess.Popen[bytes]", deadline: float) -> bytes:
    """One message from the worker, or ``TimeoutError`` once ``deadline`` has passed."""
    assert worker.stdout is not None
    fd = worker.stdout.fileno()
    buffer = bytearray()
    wanted = 8
    header = True
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            while len(buffer) < wanted:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise TimeoutError()
                chunk = os.read(fd, max(wanted - len(buffer), 65536) if not header
                                else wanted - len(buffer))
                if not chunk:
                    raise ValueError("The policy engine ended.")
                buffer += chunk
            if not header:
                return bytes(buffer[8:wanted])
            wanted = 8 + int.from_bytes(buffer[:8], "big")
            header = False

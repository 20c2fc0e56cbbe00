"""A stand-in for an OPA server, for tests only.

No OPA binary can be installed where this project is built, so this small HTTP server
speaks the part of OPA's Data API the exchange uses (``POST /v1/data/<path>`` with
``{"input": ...}``, answering ``{"result": ...}``, or ``{}`` when the rule is undefined)
and evaluates with the embedded regorus engine over the same ``policies/`` bundle. It
stands in for OPA; it is not OPA. Faults can be switched on to test failing closed.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import regorus

from exchange.decisions.bundle import load_bundle


class OpaStandIn:
    def __init__(self, policy_dir: Path) -> None:
        self.bundle = load_bundle(policy_dir)
        self.fault: str | None = None  # "undefined", "error", "slow", "trickle", "not-object"
        self.requests = 0
        self._local = threading.local()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                standin.requests += 1
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.startswith("/v1/data/"):
                    self._send(404, {"code": "not_found"})
                    return
                rule = "data." + self.path.removeprefix("/v1/data/").split("?")[0] \
                    .strip("/").replace("/", ".")
                fault = standin.fault
                if fault == "error":
                    self._send(500, {"code": "internal_error"})
                elif fault == "slow":
                    time.sleep(1.5)
                    self._send(200, {"result": standin.evaluate(rule, body.get("input"))})
                elif fault == "trickle":  # a byte every 0.2 s: each read is quick
                    data = json.dumps({"result": standin.evaluate(rule, body.get("input"))})
                    try:
                        self.send_response(200)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        for byte in data.encode():
                            if standin.fault != "trickle":
                                break  # the test is over
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(0.2)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                elif fault == "undefined":
                    self._send(200, {})
                elif fault == "not-object":
                    self._send(200, {"result": True})
                else:
                    result = standin.evaluate(rule, body.get("input"))
                    self._send(200, {} if result is None else {"result": result})

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the "slow" fault): as OPA would see

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def evaluate(self, rule: str, policy_input: Any) -> Any:
        engine = getattr(self._local, "engine", None)
        if engine is None:
            engine = regorus.Engine()
            for path, source in self.bundle.modules:
                engine.add_policy(path, source)
            engine.add_data_json(json.dumps(self.bundle.data))
            self._local.engine = engine
        engine.set_input_json(json.dumps(policy_input))
        try:
            return engine.eval_rule(rule)
        except RuntimeError:
            return None

    def __enter__(self) -> "OpaStandIn":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

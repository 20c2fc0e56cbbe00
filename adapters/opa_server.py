"""An OPA server as the decision point, through opa-python-client.

The server loads the same ``policies/`` directory as its bundle (``opa run -s policies/``).
The timeout bounds the whole call, not each read: a server that trickles its answer
fails within it. A timeout, a transport error, a 4xx/5xx answer, a missing ``result``
(OPA's answer for an undefined rule) or a result that is not an object is
``PolicyUnavailable``: never a permit.
"""

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as CallTimeout
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from opa_client import OpaClient

from exchange.decisions.bundle import load_bundle
from exchange.errors import PolicyUnavailable


class OpaDecisionPoint:
    def __init__(self, url: str, policy_dir: Path, timeout_seconds: float = 2.0) -> None:
        parsed = urlparse(url)
        self._client = OpaClient(host=parsed.hostname or "127.0.0.1",
                                 port=parsed.port or 8181, ssl=parsed.scheme == "https",
                                 timeout=timeout_seconds, retries=0)
        self._timeout = timeout_seconds
        # Calls run here so that the caller waits at most the timeout for the whole answer.
        self._calls = ThreadPoolExecutor(max_workers=32, thread_name_prefix="opa")
        # The revision is that of the bundle the server was started with: the same files.
        self._revision = load_bundle(policy_dir).revision

    @property
    def revision(self) -> str:
        return self._revision

    def decide(self, entry_point: str, policy_input: dict[str, Any]) -> dict[str, Any]:
        package, _, rule = entry_point.removeprefix("data.").rpartition(".")
        call = self._calls.submit(self._client.query_rule, input_data=policy_input,
                                  package_path=package.replace(".", "/"), rule_name=rule)
        try:
            answer = call.result(timeout=self._timeout)
        except CallTimeout:
            call.cancel()
            raise PolicyUnavailable() from None
        except Exception as exc:
            raise PolicyUnavailable() from exc
        result = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(result, dict):
            raise PolicyUnavailable()
        return result

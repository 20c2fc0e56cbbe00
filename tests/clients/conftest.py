"""The test community served over real HTTP (uvicorn on a free loopback port, in a
thread), for client libraries that speak to a URL rather than to a test client."""

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from exchange.app import create_app
from tests.community import Community, build_community


@dataclass
class Served:
    community: Community
    base: str  # http://127.0.0.1:<port>

    @property
    def fhir_base(self) -> str:
        return self.community.services.settings.fhir_base

    @property
    def token_url(self) -> str:
        return self.community.token_url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    community = build_community(tmp_path, base_url=base)
    server = uvicorn.Server(uvicorn.Config(create_app(services=community.services),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the exchange did not start serving")
        time.sleep(0.02)
    try:
        yield Served(community, base)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        community.services.engine.dispose()

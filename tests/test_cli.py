"""The command line, end to end, as separate processes: demo, serve, token, audit verify."""

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from exchange.demo.people import id_number_valid

EXCHANGE = [sys.executable, "-m", "exchange.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXCHANGE, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    data = tmp_path_factory.mktemp("demo")
    port = free_port()
    seeded = run("demo", "--data", str(data), "--port", str(port), "--residents", "6",
                 "--no-serve")
    assert seeded.returncode == 0, seeded.stderr
    assert "Seeded 6 residents" in seeded.stdout
    assert "token --data" in seeded.stdout and "curl" in seeded.stdout
    return data, port


@pytest.mark.slow
def test_demo_serve_token_and_query(demo_dir: tuple[Path, int]) -> None:
    data, port = demo_dir
    server = subprocess.Popen([*EXCHANGE, "serve", "--data", str(data), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/fhir/metadata", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        token = run("token", "--data", str(data), "--client", "clinic-a", "--purpose",
                    "TREAT", "--scope", "system/*.rs")
        assert token.returncode == 0, token.stderr + token.stdout
        headers = {"Authorization": f"Bearer {token.stdout.strip()}"}
        bundle = httpx.get(f"{base}/fhir/Patient", headers=headers, timeout=10).json()
        assert bundle["total"] >= 1
        for entry in bundle["entry"]:
            patient = entry["resource"]
            assert patient["managingOrganization"]["reference"] == "Organization/clinic-a"
            assert id_number_valid(patient["identifier"][0]["value"])
        refused = run("token", "--data", str(data), "--client", "insurer", "--purpose",
                      "TREAT")
        assert refused.returncode == 1
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.slow
def test_clients_list_and_audit_verify_then_tamper(demo_dir: tuple[Path, int]) -> None:
    data, _port = demo_dir
    listed = run("clients", "list", "--data", str(data))
    assert listed.returncode == 0
    assert {line.split("\t")[0] for line in listed.stdout.splitlines()} == \
        {"clinic-a", "clinic-b", "insurer", "hub"}
    ok = run("audit", "verify", "--data", str(data))
    assert ok.returncode == 0 and "OK:" in ok.stdout
    with sqlite3.connect(data / "exchange.db") as conn:
        conn.execute("UPDATE audit_entry SET content = CAST(X'02' || substr(content, 2) "
                     "AS BLOB) WHERE seq = 1")
    bad = run("audit", "verify", "--data", str(data))
    assert bad.returncode == 1 and "entry 1 was changed" in bad.stdout

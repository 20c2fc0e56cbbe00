"""The command line, end to end, as separate processes: demo, serve, token, audit verify."""

import json
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
    witness = data / "witness.checkpoint"
    exported = run("audit", "checkpoint", "export", "--data", str(data), "--out", str(witness))
    assert exported.returncode == 0 and witness.read_text().startswith(
        "community-health-exchange/audit\n")
    proved = run("audit", "prove", "1", "--data", str(data))
    assert proved.returncode == 0 and '"leaf_index": 0' in proved.stdout
    with_witness = run("audit", "verify", "--data", str(data), "--witness", str(witness))
    assert with_witness.returncode == 0, with_witness.stdout
    with sqlite3.connect(data / "exchange.db") as conn:
        conn.execute("UPDATE audit_entry SET content = CAST(X'02' || substr(content, 2) "
                     "AS BLOB) WHERE seq = 1")
    bad = run("audit", "verify", "--data", str(data), "--witness", str(witness))
    assert bad.returncode == 1 and "entry 1 was changed" in bad.stdout


@pytest.mark.slow
def test_registering_a_client_is_an_audited_administrative_act(tmp_path: Path) -> None:
    from exchange.identity.assertion import generate_key

    _pem, jwk = generate_key("ES384", "k1")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    added = run("clients", "add", "clinic-c", "--organization", "Organization/clinic-c",
                "--kind", "clinic", "--jwks", str(jwks), "--purpose", "TREAT",
                "--data", str(tmp_path / "d"))
    assert added.returncode == 0, added.stderr
    from exchange.app import build_services
    from exchange.config import Settings

    services = build_services(Settings(data_dir=tmp_path / "d"))
    (entry,) = list(services.ledger.entries())
    assert entry["action"] == "administration" and entry["who"]["kind"] == "operator"
    assert entry["what"]["client_id"] == "clinic-c"
    private = dict(jwk, d="AAAA")
    jwks.write_text(json.dumps({"keys": [private]}))
    refused = run("clients", "add", "clinic-d", "--organization", "Organization/clinic-d",
                  "--kind", "clinic", "--jwks", str(jwks), "--purpose", "TREAT",
                  "--data", str(tmp_path / "d"))
    assert refused.returncode == 2 and "private" in refused.stdout

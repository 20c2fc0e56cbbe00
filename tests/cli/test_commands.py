"""The command line: end to end as separate processes (demo, serve, token, audit verify),
and every expected mistake refused in one line, without a traceback, creating nothing."""

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
from click.testing import Result
from typer.testing import CliRunner

from exchange.cli import app
from exchange.demo.people import id_number_valid

EXCHANGE = [sys.executable, "-m", "exchange.cli"]
# The tests choose every setting; none leaks in from the environment they run in.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXCHANGE, *args], capture_output=True, text=True, timeout=300,
                          env={**CLEAN_ENV, **(env or {})}, check=False)


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """The command line in this process (fast), with no EXCHANGE_ setting but ``env``."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("EXCHANGE_")}
    return CliRunner().invoke(app, list(args), env={**unset, **(env or {})})


def refused(result: Result, code: int | None = None) -> str:
    """An expected mistake: a non-zero exit, one line on standard error, no traceback."""
    assert result.exit_code != 0 if code is None else result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


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
        conn.execute("UPDATE audit_entry SET content = CAST(X'7F' || substr(content, 2) "
                     "AS BLOB) WHERE seq = 1")
    bad = run("audit", "verify", "--data", str(data), "--witness", str(witness))
    assert bad.returncode == 1 and "entry 1 was changed" in bad.stdout


@pytest.mark.slow
def test_registering_a_client_is_an_audited_administrative_act(tmp_path: Path) -> None:
    from exchange.identity.assertion import generate_key

    _pem, jwk = generate_key("ES384", "k1")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    assert run("init", "--data", str(tmp_path / "d")).returncode == 0
    added = run("clients", "add", "clinic-c", "--organization", "Organization/clinic-c",
                "--kind", "clinic", "--jwks", str(jwks), "--purpose", "TREAT",
                "--data", str(tmp_path / "d"))
    assert added.returncode == 0, added.stderr
    from exchange.app import build_services
    from exchange.config import Settings

    services = build_services(Settings(data_dir=tmp_path / "d"))
    created, entry = list(services.ledger.entries())
    assert created["what"]["operation"] == "init"
    assert entry["action"] == "administration" and entry["who"]["kind"] == "operator"
    assert entry["what"]["client_id"] == "clinic-c"
    private = dict(jwk, d="AAAA")
    jwks.write_text(json.dumps({"keys": [private]}))
    refused = run("clients", "add", "clinic-d", "--organization", "Organization/clinic-d",
                  "--kind", "clinic", "--jwks", str(jwks), "--purpose", "TREAT",
                  "--data", str(tmp_path / "d"))
    assert refused.returncode == 2 and "private" in refused.stderr


# -- expected mistakes ------------------------------------------------------------------------

@pytest.fixture
def exchange_dir(tmp_path: Path) -> Path:
    data = tmp_path / "ex"
    made = invoke("init", "--data", str(data))
    assert made.exit_code == 0, made.output
    return data


def add_client(data: Path, client: str = "clinic-c") -> Result:
    return invoke("clients", "add", client, "--organization", f"Organization/{client}",
                  "--kind", "clinic", "--purpose", "TREAT", "--generate-key",
                  "--data", str(data))


NEEDS_AN_EXCHANGE = [
    ["serve"], ["token", "--client", "clinic-a"], ["clients", "list"],
    ["clients", "add", "c", "--organization", "Organization/c", "--kind", "clinic",
     "--purpose", "TREAT", "--generate-key"],
    ["residents", "token", "p1"], ["residents", "erase", "p1", "--yes"], ["keys", "rotate"],
    ["audit", "verify"], ["audit", "checkpoint", "export"], ["audit", "prove", "1"],
    ["audit", "replay", "1"],
]
IDS = [" ".join(c[:2]) for c in NEEDS_AN_EXCHANGE]


@pytest.mark.parametrize("command", NEEDS_AN_EXCHANGE, ids=IDS)
def test_a_missing_data_directory_is_refused_and_not_created(tmp_path: Path,
                                                             command: list[str]) -> None:
    typo = tmp_path / "dmeo-data"
    line = refused(invoke(*command, "--data", str(typo)), 1)
    assert f"no data directory {typo}" in line and "exchange init" in line
    assert not typo.exists()


@pytest.mark.parametrize("command", NEEDS_AN_EXCHANGE, ids=IDS)
def test_a_directory_that_is_not_an_exchange_is_refused_and_left_alone(
        tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "notes.txt").write_text("not an exchange")
    line = refused(invoke(*command, "--data", str(tmp_path)), 1)
    assert "is not an exchange data directory" in line and "keys.json" in line
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_every_command_defaults_to_demo_data_or_EXCHANGE_DATA_DIR(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for command in (["audit", "verify"], ["serve"], ["token", "--client", "clinic-a"],
                    ["residents", "token", "p1"]):
        assert "no data directory demo-data;" in refused(invoke(*command))
        assert "elsewhere;" in refused(invoke(*command, env={"EXCHANGE_DATA_DIR": "elsewhere"}))
    assert list(tmp_path.iterdir()) == []


def test_init_makes_an_exchange_once_and_only_in_a_new_or_empty_directory(
        tmp_path: Path) -> None:
    data = tmp_path / "ex"
    made = invoke("init", "--data", str(data))
    assert made.exit_code == 0, made.output
    keys = tmp_path / "ex-keys"  # apart from the data
    for name in ("keys.json", "audit-signing-key.pem", "token-signing-key.pem"):
        assert name in made.stdout and (keys / name).is_file()
        assert (keys / name).stat().st_mode & 0o077 == 0
    assert keys.stat().st_mode & 0o077 == 0
    assert "exchange.db" in made.stdout and (data / "exchange.db").is_file()
    assert "already" in refused(invoke("init", "--data", str(data)))
    assert invoke("audit", "verify", "--data", str(data)).exit_code == 0
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    for command in ("init", "demo"):
        assert "not empty" in refused(invoke(command, "--data", str(tmp_path / "other")))
    assert [p.name for p in (tmp_path / "other").iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_a_port_out_of_range_is_a_usage_error(tmp_path: Path, port: str) -> None:
    for command in (["serve"], ["demo", "--no-serve"], ["token", "--client", "c"],
                    ["residents", "token", "p1"]):
        result = invoke(*command, "--port", port, "--data", str(tmp_path / "d"))
        assert result.exit_code == 2 and "--port" in result.output, result.output
        assert "Traceback" not in result.output
    assert "EXCHANGE_PORT" in refused(invoke("serve", env={"EXCHANGE_PORT": port}), 2)
    assert not (tmp_path / "d").exists()


def test_a_base_url_that_is_not_http_is_refused(tmp_path: Path) -> None:
    line = refused(invoke("demo", "--no-serve", "--base-url", "exchange.example",
                          "--data", str(tmp_path / "d")), 2)
    assert "--base-url" in line
    assert "EXCHANGE_BASE_URL" in refused(invoke("serve", env={"EXCHANGE_BASE_URL": "x"}), 2)
    assert not (tmp_path / "d").exists()


def test_an_unknown_client_is_named(exchange_dir: Path) -> None:
    assert add_client(exchange_dir).exit_code == 0
    line = refused(invoke("token", "--client", "clinic-z", "--data", str(exchange_dir)), 1)
    assert "no client file for 'clinic-z'" in line and "clinic-c" in line


def test_a_missing_or_unreadable_file_is_named(exchange_dir: Path, tmp_path: Path) -> None:
    add = ["clients", "add", "c", "--organization", "Organization/c", "--kind", "clinic",
           "--purpose", "TREAT", "--data", str(exchange_dir)]
    missing = tmp_path / "missing.json"
    assert str(missing) in refused(invoke(*add, "--jwks", str(missing)), 2)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("-----BEGIN nothing")
    assert "not JSON" in refused(invoke(*add, "--jwks", str(garbage)), 2)
    assert "--generate-key" in refused(invoke(*add), 2)
    for option in ("--witness", "--from"):
        line = refused(invoke("audit", "verify", option, str(missing),
                              "--data", str(exchange_dir)), 2)
        assert str(missing) in line
        line = refused(invoke("audit", "verify", option, str(garbage),
                              "--data", str(exchange_dir)), 1)
        assert "not valid" in line


def test_a_garbage_private_key_is_refused(exchange_dir: Path) -> None:
    assert add_client(exchange_dir).exit_code == 0
    (exchange_dir / "clients" / "clinic-c.pem").write_text("-----BEGIN PRIVATE KEY-----\nx")
    line = refused(invoke("token", "--client", "clinic-c", "--data", str(exchange_dir)), 1)
    assert "clinic-c.pem is not a usable ES384 private key" in line
    (exchange_dir / "clients" / "clinic-c.pem").unlink()
    assert "cannot read the private key" in refused(
        invoke("token", "--client", "clinic-c", "--data", str(exchange_dir)), 1)


@pytest.mark.parametrize("name", ["keys.json", "audit-signing-key.pem", "exchange.db"])
def test_a_garbage_key_file_or_database_is_refused(tmp_path: Path, name: str) -> None:
    # Processes of their own: an exchange opened in this one keeps its pages in its WAL.
    assert run("init", "--data", str(tmp_path / "ex")).returncode == 0
    (tmp_path / ("ex" if name == "exchange.db" else "ex-keys") / name).write_text(
        "garbage" * 1000)
    verified = run("audit", "verify", "--data", str(tmp_path / "ex"))
    assert verified.returncode == 1 and "Traceback" not in verified.stderr
    assert verified.stderr.startswith("exchange: cannot open the exchange")
    assert len(verified.stderr.splitlines()) == 1


def test_an_unknown_resident_is_named(exchange_dir: Path) -> None:
    for command in (["residents", "token", "p-404"], ["residents", "erase", "p-404", "--yes"]):
        line = refused(invoke(*command, "--data", str(exchange_dir)), 1)
        assert "no resident Patient/p-404" in line


def test_an_unknown_audit_entry_is_named(exchange_dir: Path) -> None:
    for entry in ("99", "0"):
        for command in ("prove", "replay"):
            line = refused(invoke("audit", command, entry, "--data", str(exchange_dir)), 1)
            assert f"no entry {entry} in the audit ledger (it holds entries 1 to 1)" in line


def test_token_says_where_no_exchange_is_serving(exchange_dir: Path) -> None:
    assert add_client(exchange_dir).exit_code == 0
    port = free_port()
    line = refused(invoke("token", "--client", "clinic-c", "--port", str(port),
                          "--data", str(exchange_dir)), 1)
    assert f"cannot reach the exchange at http://127.0.0.1:{port}/auth/token" in line
    assert "is it serving?" in line

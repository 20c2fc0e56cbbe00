"""The exchange's public address comes from the settings everywhere: what the demo writes
and prints, the token URL ``exchange token`` calls, the audience of a resident's token."""

import json
import os
import shutil
import sqlite3
from pathlib import Path

import jwt
import pytest
from click.testing import Result
from typer.testing import CliRunner

from exchange.cli import app


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("EXCHANGE_")}
    return CliRunner().invoke(app, list(args), env={**unset, **(env or {})})


def seed(data: Path, *options: str, env: dict[str, str] | None = None) -> Result:
    seeded = invoke("demo", "--no-serve", "--residents", "3", "--data", str(data), *options,
                    env=env)
    assert seeded.exit_code == 0, seeded.output
    return seeded


def client_file(data: Path, client: str = "clinic-a") -> dict[str, str]:
    info: dict[str, str] = json.loads((data / "clients" / f"{client}.json").read_text())
    return info


def a_resident(data: Path) -> str:
    with sqlite3.connect(data / "exchange.db") as conn:
        (pid,) = conn.execute("SELECT resource_id FROM resource "
                              "WHERE resource_type = 'Patient' LIMIT 1").fetchone()
    return str(pid)


@pytest.fixture(scope="module")
def seeded_at_9123(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    data = tmp_path_factory.mktemp("addresses") / "demo"
    return data, seed(data, "--port", "9123")


@pytest.mark.parametrize(("options", "env", "base"), [
    (["--port", "9123"], {}, "http://127.0.0.1:9123"),
    ([], {"EXCHANGE_PORT": "9124"}, "http://127.0.0.1:9124"),
    (["--port", "9125", "--base-url", "https://exchange.example.org"], {},
     "https://exchange.example.org"),
    ([], {"EXCHANGE_BASE_URL": "https://hub.example.org/x"}, "https://hub.example.org/x"),
])
def test_the_demo_at_another_address_writes_nothing_that_names_8080(
        tmp_path: Path, options: list[str], env: dict[str, str], base: str) -> None:
    data = tmp_path / "demo"
    seeded = seed(data, *options, env=env)
    assert "8080" not in seeded.output and f"{base}/fhir/Patient" in seeded.output
    for path in data.rglob("*"):
        if path.is_file():
            assert b":8080" not in path.read_bytes(), path.name
    for client in ("clinic-a", "clinic-b", "insurer", "hub"):
        info = client_file(data, client)
        assert (info["token_url"], info["fhir_base"]) == (f"{base}/auth/token", f"{base}/fhir")


def test_the_demo_served_again_at_another_port_readdresses_its_client_files(
        seeded_at_9123: tuple[Path, Result], tmp_path: Path) -> None:
    data = tmp_path / "copy"
    shutil.copytree(seeded_at_9123[0], data)
    keys = seeded_at_9123[0].with_name(seeded_at_9123[0].name + "-keys")
    shutil.copytree(keys, tmp_path / "copy-keys")  # the keys live apart from the data
    again = seed(data, "--port", "9200")
    said = " ".join(again.stdout.split())  # as a reader sees it, however it wraps
    assert "exists already" in said and "now name" in said
    assert client_file(data)["token_url"] == "http://127.0.0.1:9200/auth/token"
    assert "now name" not in seed(data, "--port", "9200").stdout


def test_token_calls_the_configured_address_else_the_client_file(
        seeded_at_9123: tuple[Path, Result]) -> None:
    data = seeded_at_9123[0]
    ask = ("token", "--client", "clinic-a", "--data", str(data))
    recorded = invoke(*ask)
    assert recorded.exit_code == 1
    assert "at http://127.0.0.1:9123/auth/token (from " in recorded.stderr
    flag = invoke(*ask, "--port", "9300")
    assert "at http://127.0.0.1:9300/auth/token (as configured" in flag.stderr
    env = invoke(*ask, env={"EXCHANGE_BASE_URL": "http://127.0.0.1:9301"})
    assert "at http://127.0.0.1:9301/auth/token (as configured" in env.stderr
    url = invoke(*ask, "--url", "http://127.0.0.1:9302/auth/token", "--port", "9300")
    assert "at http://127.0.0.1:9302/auth/token (--url" in url.stderr


@pytest.mark.parametrize(("options", "env", "audience"), [
    (["--port", "9400"], {}, "http://127.0.0.1:9400/fhir"),
    ([], {"EXCHANGE_PORT": "9401"}, "http://127.0.0.1:9401/fhir"),
    (["--base-url", "https://exchange.example.org"], {}, "https://exchange.example.org/fhir"),
])
def test_a_residents_token_is_for_the_configured_address(
        seeded_at_9123: tuple[Path, Result], options: list[str], env: dict[str, str],
        audience: str) -> None:
    data = seeded_at_9123[0]
    pid = a_resident(data)
    issued = invoke("residents", "token", pid, "--data", str(data), *options, env=env)
    assert issued.exit_code == 0, issued.output
    claims = jwt.decode(issued.stdout.strip(), options={"verify_signature": False})
    assert claims["aud"] == audience and claims["sub"] == f"Patient/{pid}"
    assert claims["iss"] == audience.removesuffix("/fhir")
    assert audience in issued.stderr

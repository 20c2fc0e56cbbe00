"""``exchange clients add --generate-key``: the key pair is made here, the private key kept
0600 where the command says, the public JWK registered; nothing is overwritten."""

import json
import os
from pathlib import Path

import jwt
import pytest
from click.testing import Result
from typer.testing import CliRunner

from exchange.app import build_services
from exchange.cli import app
from exchange.cli.client_files import read_client
from exchange.config import Settings
from exchange.identity.assertion import make_assertion


def invoke(*args: str) -> Result:
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("EXCHANGE_")}
    return CliRunner().invoke(app, list(args), env=unset)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    assert invoke("init", "--data", str(tmp_path / "ex")).exit_code == 0
    return tmp_path / "ex"


def add(data: Path, *extra: str, client: str = "clinic-c") -> Result:
    return invoke("clients", "add", client, "--organization", f"Organization/{client}",
                  "--kind", "clinic", "--purpose", "TREAT", "--generate-key",
                  "--data", str(data), *extra)


def registered_jwks(data: Path, client: str) -> dict[str, object]:
    services = build_services(Settings(data_dir=data))
    registered = services.registry.get(client)
    services.engine.dispose()
    assert registered is not None
    return registered.jwks


def assert_pair(data: Path, client: str, key: Path) -> None:
    """The private key is 0600, and what it signs verifies with the registered public key."""
    assert key.stat().st_mode & 0o777 == 0o600
    (public,) = registered_jwks(data, client)["keys"]  # type: ignore[misc]
    assert "d" not in public
    info = read_client(Settings(data_dir=data), client)
    assert info.private_key.resolve() == key.resolve()
    signed = make_assertion(client, key.read_bytes(), info.alg, info.kid, info.token_url)
    claims = jwt.decode(signed, jwt.PyJWK(public).key, algorithms=[info.alg],
                        audience=info.token_url)
    assert claims["iss"] == client


def test_generate_key_writes_the_private_key_into_the_data_directory(data: Path) -> None:
    added = add(data)
    assert added.exit_code == 0, added.output
    key = data / "clients" / "clinic-c.pem"
    assert "registered clinic-c" in added.stdout and str(key) in added.stdout
    assert "token --data" in added.stdout
    assert_pair(data, "clinic-c", key)


def test_generate_key_writes_the_private_key_where_key_out_says(data: Path,
                                                                tmp_path: Path) -> None:
    key = tmp_path / "keys" / "clinic-c.pem"
    key.parent.mkdir()
    added = add(data, "--key-out", str(key), "--alg", "RS384")
    assert added.exit_code == 0, added.output
    assert str(key) in added.stdout and not (data / "clients" / "clinic-c.pem").exists()
    assert_pair(data, "clinic-c", key)
    assert json.loads((data / "clients" / "clinic-c.json").read_text())["alg"] == "RS384"


def test_a_private_key_is_never_overwritten(data: Path, tmp_path: Path) -> None:
    assert add(data).exit_code == 0
    key = data / "clients" / "clinic-c.pem"
    before = key.read_bytes()
    again = add(data)
    assert again.exit_code == 1 and "exists already" in again.stderr
    taken = tmp_path / "taken.pem"
    taken.write_text("mine")
    elsewhere = add(data, "--key-out", str(taken), client="clinic-d")
    assert elsewhere.exit_code == 1 and "exists already" in elsewhere.stderr
    assert key.read_bytes() == before and taken.read_text() == "mine"


def test_a_refused_registration_leaves_no_key_behind(data: Path, tmp_path: Path) -> None:
    refused = invoke("clients", "add", "clinic-c", "--organization", "clinic-c", "--kind",
                     "clinic", "--purpose", "TREAT", "--generate-key", "--data", str(data))
    assert refused.exit_code == 2 and "Organization/<id>" in refused.stderr
    assert list((data / "clients").iterdir()) == []
    nowhere = add(data, "--key-out", str(tmp_path / "no" / "such" / "c.pem"))
    assert nowhere.exit_code == 1 and "no directory" in nowhere.stderr
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("extra", [["--key-out", "k.pem"], ["--alg", "HS256"]])
def test_options_that_do_not_fit_are_usage_errors(data: Path, extra: list[str]) -> None:
    wrong = add(data, *extra) if extra[0] == "--alg" else invoke(
        "clients", "add", "c", "--organization", "Organization/c", "--kind", "clinic",
        "--purpose", "TREAT", "--jwks", "x.json", *extra, "--data", str(data))
    assert wrong.exit_code == 2 and len(wrong.stderr.splitlines()) == 1, wrong.output
    assert not (data / "clients").exists()

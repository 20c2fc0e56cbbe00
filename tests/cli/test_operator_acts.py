"""Every operator act at the command line leaves one entry before it reports (#14.2), and
``audit prove`` on a damaged tree is one line, never a traceback (#14.3)."""

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from exchange.app import build_services
from exchange.cli import app
from exchange.config import Settings
from tests.community import patient


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"EXCHANGE_DATA_DIR": None})


@pytest.fixture
def data(tmp_path: Path) -> Path:
    made = invoke("init", "--data", str(tmp_path / "ex"))
    assert made.exit_code == 0, made.output
    services = build_services(Settings(data_dir=tmp_path / "ex"))
    services.repository.ingest([patient("p1", "周", "玉兰", "R1", "13000000000")])
    services.engine.dispose()
    return tmp_path / "ex"


def entries(data: Path) -> list[dict[str, Any]]:
    services = build_services(Settings(data_dir=data))
    try:
        return list(services.ledger.entries())
    finally:
        services.engine.dispose()


def test_issuing_a_residents_session_is_in_their_history(data: Path) -> None:
    issued = invoke("residents", "token", "p1", "--data", str(data))
    assert issued.exit_code == 0, issued.output
    last = entries(data)[-1]
    assert (last["action"], last["outcome"], last["residents"]) == ("token", "success", ["p1"])
    assert last["who"]["kind"] == "operator" and last["request"]["method"] == "CLI"


@pytest.mark.parametrize(("command", "operation"), [
    (["audit", "verify"], "audit-verify"), (["audit", "prove", "1"], "audit-prove"),
    (["audit", "replay", "1"], "audit-replay"),
    (["audit", "checkpoint", "export"], "audit-checkpoint-export")])
def test_each_audit_command_is_an_operator_act_recorded(data: Path, command: list[str],
                                                        operation: str) -> None:
    before = len(entries(data))
    done = invoke(*command, "--data", str(data))
    assert done.exit_code == 0, done.output
    mine = entries(data)[before:]
    assert len(mine) == 1, mine
    assert mine[0]["who"]["kind"] == "operator"
    assert mine[0]["what"]["operation"] == operation


def test_a_verification_is_recorded_with_its_outcome_and_verify_pairs_them(
        data: Path) -> None:
    assert invoke("audit", "verify", "--data", str(data)).exit_code == 0
    last = entries(data)[-1]
    assert last["verification"]["ok"] is True
    # The recorded outcome is now part of what verify checks: forging it is found.
    with sqlite3.connect(data / "exchange.db") as conn:
        conn.execute("UPDATE audit_verification SET checked = checked + 100")
    checked = invoke("audit", "verify", "--data", str(data))
    assert checked.exit_code == 1 and "audit_verification" in checked.output


def test_prove_on_a_damaged_tree_is_one_line(data: Path) -> None:
    for _ in range(3):
        assert invoke("audit", "checkpoint", "export", "--data", str(data)).exit_code == 0
    with sqlite3.connect(data / "exchange.db") as conn:
        conn.execute("DELETE FROM audit_node WHERE level = 1")
    proved = invoke("audit", "prove", "1", "--data", str(data))
    assert proved.exit_code == 1
    assert isinstance(proved.exception, SystemExit), repr(proved.exception)
    assert "Traceback" not in proved.output
    assert "cannot be proved" in proved.stderr and len(proved.stderr.strip().splitlines()) == 1
    verified = invoke("audit", "verify", "--data", str(data))
    assert verified.exit_code == 1 and "audit_node level 1" in verified.output


@pytest.mark.parametrize("command", [["audit", "verify"], ["audit", "publish"],
                                     ["audit", "checkpoint", "export"],
                                     ["residents", "token", "p1"]])
def test_a_read_only_database_is_one_line_and_nothing_unrecorded(data: Path,
                                                                 command: list[str]) -> None:
    from tests.cli.test_commands import run

    read_only = f"sqlite:///file:{data / 'exchange.db'}?mode=ro&uri=true"
    done = run(*command, "--data", str(data), env={"EXCHANGE_DATABASE_URL": read_only})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "eyJ" not in done.stdout  # no session token was issued unrecorded

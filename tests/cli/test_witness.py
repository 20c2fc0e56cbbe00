"""Keys apart from the data, and a witness from the start (#14.4): ``audit publish``
hands a signed checkpoint to a file or an HTTP witness, verify reads it back by default
and so catches a rollback past it, and without a witness verify says in one line what it
cannot detect."""

import shutil
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import Result
from typer.testing import CliRunner

from exchange.cli import app
from tests.cli.test_commands import free_port


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env={"EXCHANGE_DATA_DIR": None,
                                                    "EXCHANGE_WITNESS": None,
                                                    "EXCHANGE_KEY_DIR": None, **(env or {})})


@pytest.fixture
def data(tmp_path: Path) -> Path:
    made = invoke("init", "--data", str(tmp_path / "ex"))
    assert made.exit_code == 0, made.output
    for _ in range(3):  # a few entries to vouch for
        assert invoke("audit", "checkpoint", "export", "--data",
                      str(tmp_path / "ex")).exit_code == 0
    return tmp_path / "ex"


def test_the_keys_live_apart_from_the_data(data: Path, tmp_path: Path) -> None:
    assert sorted(p.name for p in data.iterdir() if not p.name.startswith("exchange.db")) == []
    keys = tmp_path / "ex-keys"
    assert keys.stat().st_mode & 0o777 == 0o700
    assert {p.name for p in keys.iterdir()} == {"keys.json", "audit-signing-key.pem",
                                                "token-signing-key.pem", "data-keys.db"}
    # Another key directory, named by the operator.
    other = tmp_path / "vault" / "exchange-keys"
    made = invoke("init", "--data", str(tmp_path / "ex2"),
                  env={"EXCHANGE_KEY_DIR": str(other)})
    assert made.exit_code == 0, made.output
    assert (other / "keys.json").is_file() and not (tmp_path / "ex2-keys").exists()


def test_publish_to_the_local_witness_then_a_rollback_is_caught(data: Path,
                                                                tmp_path: Path) -> None:
    backup = tmp_path / "backup.db"
    with sqlite3.connect(data / "exchange.db") as conn, sqlite3.connect(backup) as copy:
        conn.backup(copy)
    for _ in range(2):  # what a rollback to the backup would take away
        assert invoke("audit", "checkpoint", "export", "--data", str(data)).exit_code == 0
    published = invoke("audit", "publish", "--data", str(data))
    assert published.exit_code == 0, published.output
    witness = tmp_path / "ex-witness" / "checkpoint"
    assert witness.read_text().startswith("community-health-exchange/audit\n")
    ok = invoke("audit", "verify", "--data", str(data))
    assert ok.exit_code == 0 and "and the witness at size" in ok.output
    # Roll the database back to before the publication: every row consistent, keys kept.
    for suffix in ("", "-wal", "-shm"):
        (data / f"exchange.db{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, data / "exchange.db")
    rolled = invoke("audit", "verify", "--data", str(data))
    assert rolled.exit_code == 1 and "TAMPERED" in rolled.output
    assert "truncated" in rolled.output or "witness" in rolled.output


def test_without_a_witness_verify_says_what_it_cannot_detect(data: Path) -> None:
    verified = invoke("audit", "verify", "--data", str(data), env={"EXCHANGE_WITNESS": "none"})
    assert verified.exit_code == 0
    notes = [line for line in verified.output.splitlines() if line.startswith("Note:")]
    assert len(notes) == 1 and "rollback" in notes[0] and "publish" in notes[0]
    # The local witness before anything was published says so too.
    fresh = invoke("audit", "verify", "--data", str(data))
    assert "holds no checkpoint yet" in fresh.output


class _Witness(BaseHTTPRequestHandler):
    held: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.held.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def do_GET(self) -> None:
        if not self.held:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(self.held[-1])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_witness() -> Iterator[str]:
    _Witness.held = []
    server = HTTPServer(("127.0.0.1", free_port()), _Witness)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/witness"
    server.shutdown()


def test_publish_to_an_http_witness_and_verify_against_it(data: Path,
                                                          http_witness: str) -> None:
    env = {"EXCHANGE_WITNESS": http_witness}
    published = invoke("audit", "publish", "--data", str(data), env=env)
    assert published.exit_code == 0, published.output
    assert _Witness.held and _Witness.held[-1].startswith(b"community-health-exchange/audit")
    verified = invoke("audit", "verify", "--data", str(data), env=env)
    assert verified.exit_code == 0 and "and the witness at size" in verified.output


def test_an_unreachable_witness_is_one_line(data: Path) -> None:
    gone = f"http://127.0.0.1:{free_port()}/witness"
    published = invoke("audit", "publish", "--data", str(data), "--to", gone)
    assert published.exit_code == 1 and "Traceback" not in published.output
    assert "cannot reach the witness" in published.stderr

"""A throwaway PostgreSQL cluster for the tests of the PostgreSQL store.

Where PostgreSQL's server programs are installed (Debian's ``postgresql`` package, which
CI installs), a session starts one cluster in a temporary directory on a free loopback
port, trusting local connections, and removes it at the end; each test gets a database of
its own. As root, the cluster runs as ``nobody`` (``initdb`` refuses root). Without the
programs, the tests that need it are skipped, saying why.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

USER = "exchange"


def _bin_dir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(args: list[str], as_nobody: bool) -> None:
    if as_nobody:
        args = ["su", "nobody", "-s", "/bin/sh", "-c", " ".join(f"'{a}'" for a in args)]
    subprocess.run(args, check=True, capture_output=True, timeout=120)


@contextmanager
def cluster() -> Iterator[str]:
    """The URL of a running throwaway cluster's ``postgres`` database."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL's server is not installed (Debian: apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    root = Path(tempfile.mkdtemp(prefix="exchange-pg-"))
    as_nobody = os.geteuid() == 0
    if as_nobody:
        shutil.chown(root, "nobody")
    data, port = root / "data", _free_port()
    try:
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust",
              "-E", "UTF8"], as_nobody)
        _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
              "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
              "start"], as_nobody)
        try:
            yield f"postgresql://{USER}@127.0.0.1:{port}/postgres"
        finally:
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                 as_nobody)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def new_database(server_url: str) -> str:
    """A fresh, empty database on the cluster; its URL."""
    import psycopg

    name = "t" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name

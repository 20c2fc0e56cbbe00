"""A throwaway PostgreSQL cluster for the bench (the durability loop's PostgreSQL run).

The same cluster as ``tests/postgres.py`` starts for the tests, without pytest: Debian's
``postgresql`` server programs, a temporary directory, a free loopback port, trust for
local connections; as root the cluster runs as ``nobody``, since ``initdb`` and the server
refuse root. Only the bench's own postmaster is ever stopped, by its data directory, or
if that fails by the pid it wrote there.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

USER = "exchange"
INSTALL = "Debian: apt-get install postgresql"


class ClusterError(Exception):
    """The cluster could not be made or started; the message says what its tools said."""


def bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: on PATH, or Debian's versioned directory
    (which is not on PATH), the newest version first."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                        key=lambda p: _version(p.parent.parent.name))
    return candidates[-1].parent if candidates else None


def _version(name: str) -> tuple[int, ...]:
    # "9.6" < "15": compared as numbers, not as text.
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def unavailable() -> str | None:
    """Why a PostgreSQL run cannot be made here, or None if it can."""
    if bin_dir() is None:
        return f"PostgreSQL's server programs are not installed ({INSTALL})"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (the postgres extra: pip install -e '.[postgres]')"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running cluster: the URL of its ``postgres`` database, and its server log."""

    url: str
    log: Path
    bin_dir: Path

    def database_url(self, name: str) -> str:
        return self.url.rsplit("/", 1)[0] + "/" + name

    def create_database(self, name: str) -> str:
        """A new, empty database on the cluster; its URL. ``name`` is the caller's
        identifier (letters, digits, underscores): it is not quoted."""
        import psycopg

        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a plain database name: {name!r}")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.database_url(name)

    def dump(self, database_url: str, into: Path) -> None:
        """A plain-SQL dump of one database: what a failed run stored, to examine after
        the cluster is gone. The client runs as the caller (only the server refuses
        root), over the loopback port."""
        subprocess.run([str(self.bin_dir / "pg_dump"), "--no-owner", "-f", str(into),
                        "-d", database_url], check=True, capture_output=True, timeout=120)


def _as_nobody() -> dict[str, Any]:
    """subprocess arguments that run a program as ``nobody`` when we are root (initdb and
    postgres refuse root), with no supplementary groups of root's; nothing otherwise."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def _run(args: list[str], cwd: Path) -> None:
    try:
        # cwd: the caller's directory may be one nobody cannot enter.
        subprocess.run(args, check=True, capture_output=True, timeout=120, cwd=cwd,
                       **_as_nobody())
    except subprocess.CalledProcessError as exc:
        said = (exc.stderr or exc.stdout or b"").decode(errors="replace").strip()
        raise ClusterError(f"{Path(args[0]).name} failed ({exc.returncode}): {said}") from None
    except subprocess.TimeoutExpired:
        raise ClusterError(f"{Path(args[0]).name} did not finish in 120 s") from None
    except OSError as exc:  # not there, or not runnable (by nobody)
        raise ClusterError(f"cannot run {args[0]}: {exc.strerror}") from None


def _stop(bin_path: Path, data: Path, root: Path) -> None:
    """Stop our postmaster: ``pg_ctl stop`` (immediate, the data is thrown away), or, if
    that fails, signal 9 to the pid in our data directory's postmaster.pid, which is our
    postmaster and no other."""
    try:
        _run([str(bin_path / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
             root)
    except ClusterError:
        with suppress(OSError, ValueError, IndexError):
            pid = int((data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)


@contextmanager
def cluster() -> Iterator[Cluster]:
    """A running throwaway cluster, stopped and removed when the block ends, however it
    ends. ClusterError if it cannot be made."""
    bin_path = bin_dir()
    if bin_path is None:
        raise ClusterError(f"PostgreSQL's server programs are not installed ({INSTALL})")
    root = Path(tempfile.mkdtemp(prefix="exchange-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "nobody")
    data, log = root / "data", root / "server.log"
    try:
        _run([str(bin_path / "initdb"), "-D", str(data), "-U", USER, "--auth=trust",
              "-E", "UTF8", "--no-sync"], root)
        port = _start(bin_path, data, log, root)
        try:
            yield Cluster(f"postgresql://{USER}@127.0.0.1:{port}/postgres", log, bin_path)
        finally:
            _stop(bin_path, data, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _start(bin_path: Path, data: Path, log: Path, root: Path, attempts: int = 3) -> int:
    """Start the postmaster on a free port; its port. A port found free can be taken by
    someone else before PostgreSQL binds it (others run tests on the machine): then
    another port, a few times."""
    for attempt in range(1, attempts + 1):
        port = free_port()
        # fsync=off: only the exchange's server is killed, never PostgreSQL or the
        # machine, so what PostgreSQL committed stays in its memory either way; syncing
        # would only slow the run. The socket goes in our directory, not the system's.
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        logged = log.stat().st_size if log.exists() else 0
        try:
            _run([str(bin_path / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l",
                  str(log), "-o", options, "start"], root)
            return port
        except ClusterError as exc:
            # What the server said this time (pg_ctl appends to the log).
            said = log.read_bytes()[logged:].decode(errors="replace")[-2000:] \
                if log.exists() else ""
            _stop(bin_path, data, root)  # a half-started postmaster is ours to end too
            if "already in use" not in said or attempt == attempts:
                raise ClusterError(f"{exc}\n{said}") from None
    raise AssertionError("unreachable")

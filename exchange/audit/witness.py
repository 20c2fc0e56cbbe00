"""Witnesses: somewhere outside the exchange that keeps its latest signed checkpoint.

The exchange holds its own signing key, so on its own the ledger can be rolled back,
re-signed or forged by whoever holds the key and the database; verify can then only say
that it is internally consistent. A witness kept elsewhere remembers the last checkpoint
the exchange published, and today's ledger must still extend it: a rollback past it, or a
rewritten history, is then caught.

A witness is a file path (a local witness: the default, ``<data>-witness/checkpoint``,
which the demo uses) or an ``http(s)://`` URL: publishing POSTs the signed note as
``text/plain``, and reading GETs the latest back. ``none`` means no witness.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import httpx

NO_WITNESS = "none"
CAVEAT = ("no witness: a rollback of the whole ledger, or a history re-signed with the "
          "exchange's own key, cannot be detected; publish checkpoints to one with "
          "`exchange audit publish`")


class WitnessError(Exception):
    """The witness could not be written or read; the message says where and why."""


@dataclass(frozen=True)
class Witness:
    target: str

    @property
    def is_url(self) -> bool:
        return self.target.startswith(("http://", "https://"))

    def publish(self, note: str) -> None:
        """Hand the signed note to the witness (atomically, for a file)."""
        if self.is_url:
            try:
                r = httpx.post(self.target, content=note.encode(),
                               headers={"Content-Type": "text/plain"}, timeout=10)
            except httpx.HTTPError as exc:
                raise WitnessError(f"cannot reach the witness at {self.target} "
                                   f"({type(exc).__name__})") from None
            if not r.is_success:
                raise WitnessError(f"the witness at {self.target} refused ({r.status_code})")
            return
        path = Path(self.target)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".new")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "w") as handle:
                handle.write(note)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise WitnessError(f"cannot write the witness {path}: {exc.strerror}") from None

    def latest(self) -> str | None:
        """The note the witness holds, or None if it holds none yet."""
        if self.is_url:
            try:
                r = httpx.get(self.target, timeout=10)
            except httpx.HTTPError as exc:
                raise WitnessError(f"cannot reach the witness at {self.target} "
                                   f"({type(exc).__name__})") from None
            if r.status_code == 404:
                return None
            if not r.is_success:
                raise WitnessError(f"the witness at {self.target} refused ({r.status_code})")
            return r.text
        path = Path(self.target)
        try:
            return path.read_text() if path.exists() else None
        except OSError as exc:
            raise WitnessError(f"cannot read the witness {path}: {exc.strerror}") from None

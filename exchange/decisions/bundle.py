"""The policy bundle: the Rego modules and JSON data under ``policies/``, and its revision.

The directory is laid out as an OPA bundle (``opa run -s policies/`` loads it as is): a
``data.json`` at ``a/b/data.json`` is the document ``data.a.b``. Every ``.rego`` file below
it is loaded, whatever its depth: one package per concern, each in the folder of its path
(``exchange/consent/consent.rego`` is ``exchange.consent``) beside its ``*_test.rego``.
``exchange/decision.rego`` composes the concerns into the one decision entry point.
The revision is a SHA-256 over every policy and data file (tests excluded), so any change
to a rule or a list moves it.
"""

import hashlib
import json
import re
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from exchange.errors import PolicyUnavailable

DECISION = "data.exchange.decision"
TOKEN_GRANT = "data.exchange.token.grant"  # noqa: S105  (a rule path, not a secret)
LABELS = "data.exchange.labels.decision"
REACH = "data.exchange.labels.dependents.decision"
ENTRY_POINTS = (DECISION, TOKEN_GRANT, LABELS, REACH)


@dataclass(frozen=True)
class PolicyBundle:
    modules: tuple[tuple[str, str], ...]  # (path relative to the bundle root, source)
    tests: tuple[tuple[str, str], ...]
    data: dict[str, Any]
    revision: str

    @property
    def reasons(self) -> dict[str, dict[str, str]]:
        """Reason codes the rules may give, each explained in English and Chinese."""
        return reason_catalogue(source for _, source in self.modules)


METADATA = re.compile(r"^# METADATA\n((?:#.*\n)+)", re.M)


def reason_catalogue(sources: Any) -> dict[str, dict[str, str]]:
    """The ``custom.reason`` of every METADATA block: the rule's code and its texts."""
    catalogue: dict[str, dict[str, str]] = {}
    for source in sources:
        for block in METADATA.findall(source):
            text = "\n".join(line[2:] if line.startswith("# ") else line[1:]
                              for line in block.splitlines())
            custom = (yaml.safe_load(text) or {}).get("custom") or {}
            if isinstance(custom, dict) and isinstance(custom.get("reason"), str):
                catalogue[custom["reason"]] = {"en": str(custom.get("en", "")),
                                               "zh": str(custom.get("zh", ""))}
    return catalogue


def bundle_files(root: Path) -> list[Path]:
    """The files a bundle is made of: its rules, their data, the de-identification
    profiles. Tests and schemas are not policy."""
    return [path for path in sorted(root.rglob("*"))
            if path.is_file() and (
                (path.suffix == ".rego" and not path.stem.endswith("_test"))
                or path.name == "data.json"
                or (path.suffix == ".json" and path.parent.name == "profiles"))]


class BundleWatch:
    """Whether the bundle on disk is still the one loaded. Files that change, vanish or
    appear while the exchange serves mean the rules it decides with are no longer the
    ones deployed: decisions fail closed (503) until it is restarted and loads them, as
    it refuses to start without them. Checked at most every ``every`` seconds: a stat of
    each file, not a read."""

    def __init__(self, root: Path, every: float = 1.0) -> None:
        self._root = root
        self._every = every
        self._seen = self._state()
        self._checked = time.monotonic()
        self.intact = True

    def _state(self) -> dict[str, tuple[int, int]]:
        state = {}
        for path in bundle_files(self._root):
            stat = path.stat()
            state[path.relative_to(self._root).as_posix()] = (stat.st_mtime_ns, stat.st_size)
        return state

    def check(self) -> bool:
        now = time.monotonic()
        if self.intact and now - self._checked >= self._every:
            self._checked = now
            try:
                self.intact = self._state() == self._seen
            except OSError:
                self.intact = False
        return self.intact


def load_bundle(root: Path) -> PolicyBundle:
    modules: list[tuple[str, str]] = []
    tests: list[tuple[str, str]] = []
    data: dict[str, Any] = {}
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in (".rego", ".json"):
            continue
        rel = path.relative_to(root).as_posix()
        raw = path.read_bytes()
        if path.suffix == ".rego":
            (tests if path.stem.endswith("_test") else modules).append((rel, raw.decode()))
        elif path.name == "data.json":
            node = data
            for part in path.parent.relative_to(root).parts:
                node = node.setdefault(part, {})
            node.update(json.loads(raw))
        elif path.parent.name != "profiles":
            continue  # schemas are not policy; de-identification profiles are
        if not path.stem.endswith("_test"):
            digest.update(rel.encode() + b"\x00" + raw + b"\x00")
    return PolicyBundle(tuple(modules), tuple(tests), data, "sha256:" + digest.hexdigest()[:16])


def check_complete(bundle: PolicyBundle, profiles: Collection[str]) -> None:
    """Policy data is part of the policy: without its static data, or without a
    de-identification profile it names, the exchange refuses to run (``PolicyUnavailable``)
    rather than answer empty pages and 404s as if the records were not there."""
    static = bundle.data.get("exchange", {}).get("static")
    if not isinstance(static, dict) or not isinstance(static.get("purposes"), dict) \
            or not static["purposes"]:
        raise PolicyUnavailable("The policy data (exchange/static/data.json) is missing.")
    named = {str(v) for v in (static.get("profiles") or {}).values()}
    named |= {str(p["profile"]) for p in static["purposes"].values()
              if isinstance(p, dict) and p.get("profile")}
    missing = sorted(named - set(profiles))
    if missing:
        raise PolicyUnavailable("The de-identification profile(s) "
                                f"{', '.join(missing)} named by the policy data are missing.")

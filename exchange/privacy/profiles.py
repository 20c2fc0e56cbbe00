"""De-identification profiles: data files of ordered rules, applied to stored JSON.

A profile (``policies/exchange/profiles/<name>.json``) has a ``default`` method and an
ordered list of rules ``{"path", "method", "params"}``. The decision's obligations name
the profile; the road applies it after minimization.

Path syntax (documented here, checked when a profile loads):

- ``Type.element.element``: the first segment is a resource type or ``*``; the others
  are JSON element names. List items are transparent: ``Patient.name.given`` is every
  given name of every name.
- ``*`` within a segment matches any characters of one element name (``value*``);
  a whole ``**`` segment matches any number of elements, at any depth, including none.
- A trailing ``@date`` selects only string values that are FHIR dates, dateTimes or
  instants (``**@date``: every date anywhere, extensions included).

For each element the *first* rule whose path matches decides. ``keep`` on an object
descends: its children are matched in turn and inherit ``keep``; an element no rule
matches takes its parent's method, and a top-level element the profile's ``default``.

Methods: ``keep``, ``redact``, ``dateShift``, ``cryptoHash``, ``encrypt``, ``substitute``,
``generalize``, ``perturb``, ``scrub`` (see ``exchange/privacy/methods.py``).
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exchange.privacy.methods import METHODS, REMOVE, Moved, ShapeContext, is_date

EXTENSIONS = frozenset({"extension", "modifierExtension"})
Rule = tuple[re.Pattern[str], bool, str, dict[str, Any]]  # path, dates only, method, params


@dataclass(frozen=True)
class KAnonymity:
    k: int
    ladder: tuple[dict[str, Any], ...]


@dataclass
class Profile:
    name: str
    default: str
    rules: tuple[Rule, ...]
    tags: tuple[dict[str, str], ...] = ()
    date_shift_days: int = 0
    k_anonymity: KAnonymity | None = None
    _memo: dict[tuple[str, bool], Rule | None] = field(default_factory=dict, repr=False)

    @property
    def passes_through(self) -> bool:
        return self.default == "keep" and not self.rules and not self.tags

    def apply(self, resource: dict[str, Any], ctx: ShapeContext) -> dict[str, Any]:
        if self.passes_through:
            return resource
        rtype = str(resource.get("resourceType"))
        ctx.resource_type = rtype
        ctx.resource_id = str(resource.get("id"))
        out = self._object(resource, rtype, self.default, ctx)
        out = {"resourceType": rtype, **out}
        if self.tags:
            meta = dict(out.get("meta") or {})
            meta["tag"] = [*(meta.get("tag") or []),
                           *(t for t in self.tags if t not in (meta.get("tag") or []))]
            out["meta"] = meta
        return out

    def _object(self, node: dict[str, Any], path: str, inherited: str,
                ctx: ShapeContext) -> dict[str, Any]:
        out: dict[str, Any] = {}
        moved: list[dict[str, Any]] = []
        for key, value in node.items():
            if key == "resourceType" and path == ctx.resource_type:
                continue
            shaped = self._element(value, key, f"{path}.{key}", inherited, ctx)
            if isinstance(shaped, Moved):
                moved.append(shaped.extension)
            elif shaped is not REMOVE:
                out[key] = shaped
        if moved:
            out["extension"] = [*(out.get("extension") or []), *moved]
        return out

    def _element(self, value: Any, key: str, path: str, inherited: str,
                 ctx: ShapeContext) -> Any:
        if isinstance(value, list):
            items = [self._element(v, key, path, inherited, ctx) for v in value]
            kept = [i for i in items if i is not REMOVE and not isinstance(i, Moved)]
            moved = [i for i in items if isinstance(i, Moved)]
            if moved and not kept:
                return moved[0]
            return kept if kept else REMOVE
        rule = self._rule(path, isinstance(value, str) and is_date(value))
        method = rule[2] if rule else inherited
        if method == "keep":
            if isinstance(value, dict):
                child = self._object(value, path, "keep", ctx)
                if key in EXTENSIONS and child.keys() <= {"url", "id"}:
                    return REMOVE  # an extension whose value was removed says nothing
                return child if child else REMOVE
            return value
        if method == "redact":
            return REMOVE
        return METHODS[method](value, key, path, rule[3] if rule else {}, ctx)

    def _rule(self, path: str, date: bool) -> Rule | None:
        memo_key = (path, date)
        if memo_key in self._memo:
            return self._memo[memo_key]
        found = next((r for r in self.rules
                      if r[0].fullmatch(path) and (date or not r[1])), None)
        if len(self._memo) < 50_000:
            self._memo[memo_key] = found
        return found


def compile_path(path: str) -> tuple[re.Pattern[str], bool]:
    body, _, selector = path.partition("@")
    if selector not in ("", "date"):
        raise ValueError(f"unknown selector @{selector} in {path!r}")
    segments = body.split(".")
    if not segments or any(s == "" for s in segments):
        raise ValueError(f"empty segment in {path!r}")
    pieces: list[str] = []
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == "**":
            pieces.append(r"[^.]+(?:\.[^.]+)*" if last else r"(?:[^.]+\.)*")
        else:
            pieces.append(re.escape(seg).replace(r"\*", "[^.]*") + ("" if last else r"\."))
    return re.compile("".join(pieces)), selector == "date"


def load_profile(path: Path) -> Profile:
    raw = json.loads(path.read_text())
    rules: list[Rule] = []
    methods = {"keep", "redact", *METHODS}
    if raw.get("default") not in ("keep", "redact"):
        raise ValueError(f"{path.name}: default must be keep or redact")
    for rule in raw.get("rules", []):
        if rule.get("method") not in methods:
            raise ValueError(f"{path.name}: unknown method {rule.get('method')!r}")
        pattern, dates = compile_path(str(rule["path"]))
        rules.append((pattern, dates, str(rule["method"]), dict(rule.get("params") or {})))
    k = raw.get("k_anonymity")
    return Profile(
        name=str(raw["name"]), default=str(raw["default"]), rules=tuple(rules),
        tags=tuple(raw.get("tags") or ()), date_shift_days=int(raw.get("date_shift_days", 0)),
        k_anonymity=KAnonymity(int(k["k"]), tuple(k["ladder"])) if k else None)


def load_profiles(directory: Path, k_override: int | None = None) -> dict[str, Profile]:
    profiles = {}
    for path in sorted(directory.glob("*.json")):
        profile = load_profile(path)
        if k_override is not None and profile.k_anonymity is not None:
            profile.k_anonymity = KAnonymity(k_override, profile.k_anonymity.ladder)
        profiles[profile.name] = profile
    return profiles


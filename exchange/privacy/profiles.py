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

Free text by allow-list (``"free_text": {"allow": [paths]}``): an element kept whose R4
datatype is ``string`` or ``markdown`` (``exchange/fhir/datatypes.py``), or that R4 does
not define, leaves only if an allow-list path matches it. So a name typed into a unit, a
display, a ``text`` or an extension's ``valueString`` stays behind whatever element
carries it, and a scrubber's misses cannot leak. With ``"units": "ucum-code"`` a UCUM
Quantity's ``unit`` is its ``code``, never the text that came in.
"""

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from exchange.fhir.datatypes import is_free_text
from exchange.privacy.derived import Fact, load_facts
from exchange.privacy.methods import METHODS, REMOVE, Moved, ShapeContext, is_date

EXTENSIONS = frozenset({"extension", "modifierExtension"})
UCUM = "http://unitsofmeasure.org"
MEMO_BYTES = 1024  # objects larger than this are shaped each time, not remembered
Rule = tuple[re.Pattern[str], bool, str, dict[str, Any]]  # path, dates only, method, params


@dataclass(frozen=True)
class Aggregates:
    """Counts of residents per zone and derived fact, released with differential privacy
    (``noise.py``): ``epsilon`` per release, at most ``epsilon_per_day`` per recipient."""

    facts: tuple[str, ...]
    zones: tuple[str, ...]
    epsilon: float
    epsilon_per_day: float


@dataclass(frozen=True)
class KAnonymity:
    k: int
    ladder: tuple[dict[str, Any], ...]
    max_suppression: float = 0.0  # share of a population suppressed rather than coarsen


class _Plan:
    """What the rules say about one path, and the paths beneath it (built on first use):
    walking a resource follows dict lookups, not regular expressions."""

    __slots__ = ("allow", "children", "dated", "path", "plain", "rules", "text", "volatile")

    def __init__(self, path: str, rules: tuple[Rule, ...],
                 allow: tuple[re.Pattern[str], ...] | None = None) -> None:
        self.volatile = 0  # how often an object here needed a keyed method (not memoized)
        self.path = path
        self.rules = rules
        self.allow = allow
        self.plain = next((r for r in rules if not r[1] and r[0].fullmatch(path)), None)
        self.dated = next((r for r in rules if r[0].fullmatch(path)), None)
        # Under a free-text allow-list: whether a string kept here is held back.
        self.text = allow is not None and is_free_text(path) \
            and not any(a.fullmatch(path) for a in allow)
        self.children: dict[str, _Plan] = {}

    def child(self, key: str) -> "_Plan":
        plan = self.children.get(key)
        if plan is None:
            plan = _Plan(f"{self.path}.{key}", self.rules, self.allow)
            if len(self.children) < 1000:  # element names are bounded; stay bounded
                self.children[key] = plan
        return plan


@dataclass
class Profile:
    name: str
    default: str
    rules: tuple[Rule, ...]
    tags: tuple[dict[str, str], ...] = ()
    date_shift_days: int = 0
    k_anonymity: KAnonymity | None = None
    # Search parameters a recipient may use under this profile (None: all). Searching by
    # what a profile hides (a name, a birth date, an unshifted date) would reveal it.
    search_parameters: frozenset[str] | None = None
    # Free text by allow-list (None: strings are kept like any value the rules keep).
    text_allowed: tuple[re.Pattern[str], ...] | None = None
    units_from_code: bool = False
    # Facts derived from the resident's record, carried on their Patient (derived.py).
    facts: tuple[Fact, ...] = ()
    aggregates: Aggregates | None = None
    _plans: dict[str, _Plan] = field(default_factory=dict, repr=False)
    _leaves: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def passes_through(self) -> bool:
        return self.default == "keep" and not self.rules and not self.tags \
            and self.text_allowed is None and not self.units_from_code and not self.facts

    def apply(self, resource: dict[str, Any], ctx: ShapeContext) -> dict[str, Any]:
        if self.passes_through:
            return resource
        rtype = str(resource.get("resourceType"))
        ctx.resource_type = rtype
        ctx.resource_id = str(resource.get("id"))
        ctx.resource_code = _first_code(resource.get("code"))
        plan = self._plans.get(rtype)
        if plan is None:
            plan = self._plans[rtype] = _Plan(rtype, self.rules, self.text_allowed)
        out = self._object(resource, plan, self.default, ctx, root=True)
        out = {"resourceType": rtype, **out}
        if self.tags:
            meta = dict(out.get("meta") or {})
            meta["tag"] = [*(meta.get("tag") or []),
                           *(t for t in self.tags if t not in (meta.get("tag") or []))]
            out["meta"] = meta
        return out

    def _object(self, node: dict[str, Any], plan: _Plan, inherited: str,
                ctx: ShapeContext, root: bool = False) -> dict[str, Any]:
        # An object that only keep/redact touch (a CodeableConcept, a Quantity) shapes the
        # same for every recipient and resident: shaped once per profile, shared after.
        # One that keyed methods touch but whose result depends only on the recipient and
        # the resident (a reference, a date, a scrubbed text) is remembered per resident.
        memo: tuple[Any, ...] | None = None
        if not root and plan.volatile < 3:
            raw = orjson.dumps(node)
            if len(raw) <= MEMO_BYTES:
                memo = (plan, inherited, raw)
                hit = self._leaves.get(memo)
                if hit is not None:
                    return hit
                hit = ctx.memo.get(memo)
                if hit is not None:
                    ctx.keyed = True  # what holds it is this resident's and domain's too
                    return hit
        outer, ctx.keyed = ctx.keyed, False
        outer_bound, ctx.resource_bound = ctx.resource_bound, False
        out: dict[str, Any] = {}
        moved: list[dict[str, Any]] = []
        children = plan.children
        for key, value in node.items():
            if root and key == "resourceType":
                continue
            sub = children.get(key) or plan.child(key)
            kind = type(value)
            if kind is not dict and kind is not list:
                rule = sub.plain
                if sub.dated is not rule and kind is str and len(value) >= 7 \
                        and value[4] == "-" and is_date(value):
                    rule = sub.dated
                method = rule[2] if rule else inherited
                # A primitive kept or redacted (the hot path), or given to its method.
                if method == "keep":
                    if not (sub.text and kind is str):
                        out[key] = value
                    continue
                if method == "redact":
                    continue
                ctx.keyed = True
                shaped = METHODS[method](value, key, sub.path, rule[3] if rule else {}, ctx)
            elif kind is list and sub.plain is None and inherited == "keep" \
                    and key not in EXTENSIONS and all(type(v) is dict for v in value):
                # A list of objects no rule names (codings, categories): shape each directly.
                items = [self._object(v, sub, "keep", ctx) for v in value]
                shaped = [i for i in items if i] or REMOVE
            else:
                shaped = self._element(value, key, sub, inherited, ctx)
            if shaped is REMOVE:
                continue
            if type(shaped) is Moved:
                moved.append(shaped.extension)
            else:
                out[key] = shaped
        if moved:
            out["extension"] = [*(out.get("extension") or []), *moved]
        if self.units_from_code and "unit" in node and node.get("system") == UCUM \
                and isinstance(out.get("code"), str):
            out["unit"] = out["code"]
        keyed = ctx.keyed or bool(moved)
        bound = ctx.resource_bound
        ctx.keyed, ctx.resource_bound = outer or keyed, outer_bound or bound
        if bound:
            plan.volatile += 1
        elif memo is None:
            pass
        elif not keyed:
            if len(self._leaves) < 100_000:
                self._leaves[memo] = out
        elif not moved and len(ctx.memo) < 10_000:
            ctx.memo[memo] = out
        return out

    def _element(self, value: Any, key: str, plan: _Plan, inherited: str,
                 ctx: ShapeContext) -> Any:
        kind = type(value)
        if kind is list:
            items = [self._element(v, key, plan, inherited, ctx) for v in value]
            kept = [i for i in items if i is not REMOVE and type(i) is not Moved]
            if kept:
                return kept
            moved = [i for i in items if type(i) is Moved]
            return moved[0] if moved else REMOVE
        rule = plan.plain
        if plan.dated is not rule and kind is str and is_date(value):
            rule = plan.dated
        method = rule[2] if rule else inherited
        if method == "keep":
            if kind is dict:
                child = self._object(value, plan, "keep", ctx)
                if key in EXTENSIONS and child.keys() <= {"url", "id"}:
                    return REMOVE  # an extension whose value was removed says nothing
                return child if child else REMOVE
            return REMOVE if plan.text and kind is str else value
        if method == "redact":
            return REMOVE
        ctx.keyed = True  # the result depends on the recipient, the resident or the resource
        return METHODS[method](value, key, plan.path, rule[3] if rule else {}, ctx)


def _first_code(concept: Any) -> str:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    first = codings[0] if isinstance(codings, list) and codings else None
    return f"{first.get('system')}|{first.get('code')}" if isinstance(first, dict) else ""


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
    text = raw.get("free_text")
    facts = load_facts(raw.get("derived", []))
    aggregates = _aggregates(raw.get("aggregates"))
    banded = {f.name for f in facts if f.reduce != "classes"}
    if aggregates is not None and not set(aggregates.facts) <= banded:
        raise ValueError(f"{path.name}: aggregates count facts of one value per resident")
    return Profile(
        name=str(raw["name"]), default=str(raw["default"]), rules=tuple(rules),
        tags=tuple(raw.get("tags") or ()), date_shift_days=int(raw.get("date_shift_days", 0)),
        k_anonymity=KAnonymity(int(k["k"]), tuple(k["ladder"]),
                               float(k.get("max_suppression", 0.0))) if k else None,
        search_parameters=frozenset(raw["search_parameters"])
        if "search_parameters" in raw else None,
        text_allowed=tuple(compile_path(str(a))[0] for a in text.get("allow", []))
        if text is not None else None,
        units_from_code=raw.get("units") == "ucum-code",
        facts=facts, aggregates=aggregates)


def _aggregates(raw: dict[str, Any] | None) -> Aggregates | None:
    if raw is None:
        return None
    spec = Aggregates(tuple(raw["facts"]), tuple(raw["zones"]), float(raw["epsilon"]),
                      float(raw["epsilon_per_day"]))
    if not 0 < spec.epsilon <= spec.epsilon_per_day:
        raise ValueError("aggregates: epsilon must be positive and within the day's budget")
    return spec


def load_profiles(directory: Path, k_override: int | None = None) -> dict[str, Profile]:
    profiles = {}
    for path in sorted(directory.glob("*.json")):
        profile = load_profile(path)
        if k_override is not None and profile.k_anonymity is not None:
            profile.k_anonymity = replace(profile.k_anonymity, k=k_override)
        profiles[profile.name] = profile
    return profiles


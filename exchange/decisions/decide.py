"""Ask the policies: build the input, call the decision point, read the ``Decision``.

Nothing here decides. It gathers the resident's consents (the only data the policy needs
besides the request), and turns the policy's answer into a typed value. Any failure on the
way, or an answer of the wrong shape, is a denial by exception (503), never an allow.
"""

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import tzinfo
from typing import Any

import orjson

from consent.model import policy_view
from exchange.clock import SystemMonotonic
from exchange.decisions.bundle import DECISION, LABELS, REACH, TOKEN_GRANT
from exchange.errors import ConsentUnavailable, ExchangeError, InvalidCode, PolicyUnavailable
from exchange.fhir.codes import codings
from exchange.fhir.data_classes import ClassRule, read_rules
from exchange.identity.model import Identity
from exchange.ports import Clock, DecisionPoint, Monotonic
from exchange.store.repository import ResourceRepository


@dataclass(frozen=True)
class Decision:
    allow: bool
    reasons: tuple[str, ...]
    consents: tuple[str, ...]
    policy_revision: str
    form: str = "identified"
    profile: str = "identified"
    # The profile no resident's disclosure to this requester is looser than (a search's
    # parameters are judged on it before anything runs).
    search_profile: str = "identified"
    types: dict[str, list[str]] = field(default_factory=dict)
    withhold_labels: tuple[dict[str, Any], ...] = ()
    categories: dict[str, ClassRule] = field(default_factory=dict)
    input: dict[str, Any] = field(default_factory=dict)
    stamp: str = ""  # the resident's consent stamp the decision was made under

    def allows(self, resource_type: str) -> bool:
        return self.allow and resource_type in self.types

    def admits(self, resource: dict[str, Any]) -> bool:
        """Whether a resource of an allowed type is in the data classes this opens."""
        rule = self.categories.get(str(resource.get("resourceType")))
        return rule is None or rule.admits(resource)

    def audit_view(self) -> dict[str, Any]:
        return {"allow": self.allow, "reasons": list(self.reasons),
                "consents": list(self.consents), "policy_revision": self.policy_revision,
                "form": self.form, "profile": self.profile, "input": self.input}


class Decider:
    """Builds policy inputs and caches decisions.

    A decision is cached under everything its input holds but time: the requester, the
    action, the types, the resident, the resident's consent stamp and the policy revision.
    It stays valid until the next moment a consent period starts or ends. The consent
    stamp is re-read from the database at most twice a second per resident, and dropped at
    once when this process writes a consent: revocation is immediate here and reaches
    every other worker within a second.
    """

    STAMP_SECONDS = 0.5  # half the one-second promise: room for the query and the clock
    MAX_ENTRIES = 100_000
    MAX_LABEL_SETS = 10_000

    def __init__(self, point: DecisionPoint, repository: ResourceRepository,
                 clock: Clock, monotonic: Monotonic | None = None) -> None:
        self._point = point
        self._monotonic = monotonic or SystemMonotonic()
        self._repository = repository
        self._clock = clock
        self._stamps: dict[str, tuple[str, float]] = {}  # resident -> (stamp, read at)
        self._views: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        self._decisions: dict[tuple[Any, ...], tuple[Decision, float]] = {}
        self._labels: dict[tuple[Any, ...], list[dict[str, str]]] = {}
        self._reached: dict[tuple[Any, ...], list[dict[str, str]]] = {}
        self._lock = threading.Lock()

    @property
    def revision(self) -> str:
        return self._point.revision

    @property
    def zone(self) -> tzinfo:
        """The community's time zone, in which a consent's dates begin and end."""
        return self._repository.zone

    def invalidate(self, resident: str) -> None:
        """Forget all that was derived from a resident's consents (after a consent write)."""
        with self._lock:
            self._stamps.pop(resident, None)
            self._views.pop(resident, None)
            self._decisions = {k: v for k, v in self._decisions.items() if k[3] != resident}

    def refresh(self, residents: Sequence[str]) -> dict[str, str]:
        """The residents' consent stamps, those that are due re-read in one query: a search
        over many residents does not pay one query per resident."""
        now = self._monotonic.seconds()
        stamps: dict[str, str] = {}
        for resident in residents:
            cached = self._stamps.get(resident)
            if cached is not None and now - cached[1] < self.STAMP_SECONDS:
                stamps[resident] = cached[0]
        due = [r for r in residents if r not in stamps]
        if due:
            try:
                fresh = self._repository.consent_stamps(due)
            except ExchangeError as exc:
                raise ConsentUnavailable() from exc
            for resident, stamp in fresh.items():
                self._stamps[resident] = (stamp, now)
            stamps.update(fresh)
        return stamps

    def _stamp(self, resident: str) -> str:
        return self.refresh([resident])[resident]

    def still_current(self, resident: str, stamp: str) -> bool:
        """Whether the resident's consents are as they were under ``stamp``, read from the
        database now (not the cache). Unreadable counts as changed."""
        try:
            return self._repository.consent_stamp(resident) == stamp
        except ExchangeError:
            return False

    def consents_for(self, resident: str) -> list[dict[str, Any]]:
        return self._consents(resident)[1]

    def _consents(self, resident: str) -> tuple[str, list[dict[str, Any]]]:
        try:
            stamp = self._stamp(resident)
            cached = self._views.get(resident)
            if cached is not None and cached[0] == stamp:
                return cached
            views = [policy_view(orjson.loads(row.body), row.version_id,
                                 self._repository.zone)
                     for row in self._repository.consents_of(resident)]
        except (ExchangeError, ValueError, TypeError, KeyError) as exc:
            raise ConsentUnavailable() from exc
        if len(self._views) > self.MAX_ENTRIES:
            self._views.clear()
        self._views[resident] = (stamp, views)
        return stamp, views

    def policy_input(self, identity: Identity, action: str, types: Sequence[str],
                     resident: str | None) -> dict[str, Any]:
        return {
            "action": action,
            "resource_types": sorted(set(types)),
            "requester": identity.policy_view(),
            "resident": resident,
            "consents": self.consents_for(resident) if resident else [],
            "now": int(self._clock.now().timestamp()),
        }

    def decide(self, identity: Identity, action: str, types: Sequence[str],
               resident: str | None, context: dict[str, str] | None = None,
               holder: str | None = None) -> Decision:
        """``holder``: for a record of no resident outside the directory, the organization
        it is held for (``policies/exchange/held``)."""
        stamp, consents = self._consents(resident) if resident else ("", [])
        requester = identity.policy_view()
        key = (orjson.dumps(requester, option=orjson.OPT_SORT_KEYS), action,
               tuple(sorted(set(types))), resident, stamp, self._point.revision,
               orjson.dumps(context or {}, option=orjson.OPT_SORT_KEYS), holder)
        now = int(self._clock.now().timestamp())
        cached = self._decisions.get(key)
        if cached is not None and now < cached[1]:
            return cached[0]
        policy_input = {"action": action, "resource_types": sorted(set(types)),
                        "requester": requester, "resident": resident, "consents": consents,
                        "now": now, **({"context": context} if context else {}),
                        **({"holder": holder} if holder is not None and resident is None
                           else {})}
        decision = replace(self.decide_input(policy_input), stamp=stamp)
        if len(self._decisions) > self.MAX_ENTRIES:
            with self._lock:
                self._decisions.clear()
        self._decisions[key] = (decision, _next_boundary(consents, now))
        return decision

    def labels_for(self, resource: dict[str, Any]) -> list[dict[str, str]]:
        """Security labels the policies give a resource on its way in."""
        unique = {(c["system"], c["code"]): c for c in codings(resource)}
        rtype = resource.get("resourceType")
        # The answer depends on the type, the codes and the policy alone, and a record's
        # codes repeat (every heart rate is LOINC 8867-4): each set is asked once.
        key = (self._point.revision, rtype, tuple(sorted(unique)))
        cached = self._labels.get(key)
        if cached is not None:
            return [dict(label) for label in cached]  # the caller's to write into a record
        result = self._point.decide(LABELS, {"resource_type": rtype,
                                             "codes": [unique[k] for k in sorted(unique)]})
        labels, unreadable = result.get("labels"), result.get("unreadable")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) \
                or not isinstance(unreadable, list):
            raise PolicyUnavailable("The labelling policy answered in an unexpected shape.")
        if unreadable:
            # A code the policy cannot read cannot be labelled: stored, it would pass every
            # guard. Not cached, so that the refusal is asked again and says so each time.
            raise InvalidCode(
                "A code of a standard code system (ICD, LOINC, SNOMED CT) holds characters "
                "no code of that system has, so its sensitivity cannot be read.")
        found = [{"system": LABEL_SYSTEM, "code": code} for code in labels]
        if len(self._labels) > self.MAX_LABEL_SETS:
            self._labels.clear()
        self._labels[key] = found
        return [dict(label) for label in found]

    def reach_labels(self, resource_type: str,
                     pointers: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
        """Security labels that reach a resource on its way in from the labelled records
        of its resident it points at (``pointers``: path, target type, target labels)."""
        key = (self._point.revision, resource_type, tuple(sorted(
            (p["path"], p["target_type"],
             tuple(sorted((label["system"], label["code"]) for label in p["labels"])))
            for p in pointers)))
        cached = self._reached.get(key)
        if cached is not None:
            return [dict(label) for label in cached]
        result = self._point.decide(REACH, {"resource_type": resource_type,
                                            "pointers": list(pointers)})
        labels = result.get("labels") if isinstance(result, dict) else None
        if not isinstance(labels, list) or not all(
                isinstance(x, dict) and isinstance(x.get("system"), str)
                and isinstance(x.get("code"), str) for x in labels):
            raise PolicyUnavailable("The labelling policy answered in an unexpected shape.")
        found = [{"system": x["system"], "code": x["code"]} for x in labels]
        if len(self._reached) > self.MAX_LABEL_SETS:
            self._reached.clear()
        self._reached[key] = found
        return [dict(label) for label in found]

    def grant_token(self, client: dict[str, Any], purpose: str,
                    scopes: list[dict[str, Any]]) -> tuple[bool, list[str], list[str]]:
        """The token-issuance policy's answer: (allowed, scopes granted, reasons)."""
        grant = self._point.decide(TOKEN_GRANT, {"client": client, "purpose": purpose,
                                                 "requested_scopes": scopes})
        # Only a complete answer counts: a token is never issued on a partial or odd one,
        # and never with a scope that was not asked for.
        if not isinstance(grant, dict):
            raise PolicyUnavailable("The token policy answered in an unexpected shape.")
        allow, granted, reasons = (grant.get("allow"), grant.get("scopes"),
                                   grant.get("reasons"))
        asked = {s.get("text") for s in scopes}
        if not isinstance(allow, bool) or not isinstance(granted, list) \
                or not isinstance(reasons, list) \
                or not all(isinstance(x, str) for x in [*granted, *reasons]) \
                or not set(granted) <= asked or (allow and not granted):
            raise PolicyUnavailable("The token policy answered in an unexpected shape.")
        return allow, list(granted), list(reasons)

    def decide_input(self, policy_input: dict[str, Any]) -> Decision:
        result = self._point.decide(DECISION, policy_input)
        decision = read_decision(result, self._point.revision)
        return replace(decision, input=recorded_input(policy_input))


LABEL_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
def recorded_input(policy_input: dict[str, Any]) -> dict[str, Any]:
    """The input as the audit keeps it: consents by id and version, to be read back."""
    return {**policy_input, "consents": [f"{c['id']}/_history/{c['version']}"
                                         for c in policy_input.get("consents", [])]}


def _next_boundary(consents: list[dict[str, Any]], now: int) -> float:
    """The next moment a consent or provision period begins or ends: a cached decision
    is not used past it."""
    moments: list[int] = []

    def walk(node: dict[str, Any]) -> None:
        period = node.get("period") or {}
        moments.extend(v for v in (period.get("start"), period.get("end"))
                       if isinstance(v, int) and v > now)
        for child in node.get("provisions", []):
            walk(child)

    for consent in consents:
        walk(consent)
        walk(consent.get("provision") or {})
    return float(min(moments)) if moments else float("inf")


def read_decision(result: dict[str, Any], revision: str) -> Decision:
    try:
        obligations = result["obligations"]
        types = obligations["types"]
        allow = result["allow"]
        if not isinstance(allow, bool) or not isinstance(types, dict):
            raise TypeError
        return Decision(
            allow=allow,
            reasons=tuple(str(r) for r in result.get("reasons", [])),
            consents=tuple(str(c) for c in result.get("consents", [])),
            policy_revision=revision,
            form=str(obligations["form"]),
            profile=str(obligations["profile"]),
            search_profile=str(obligations.get("search_profile", "identified")),
            types={str(t): [str(f) for f in fs] for t, fs in types.items()},
            withhold_labels=tuple(obligations.get("withhold_labels", [])),
            categories=read_rules(obligations.get("categories")),
        )
    except (KeyError, TypeError, AttributeError):
        raise PolicyUnavailable("The policy answered in an unexpected shape.") from None

"""Ask the policies: build the input, call the decision point, read the ``Decision``.

Nothing here decides. It gathers the resident's consents (the only data the policy needs
besides the request), and turns the policy's answer into a typed value. Any failure on the
way, or an answer of the wrong shape, is a denial by exception (503), never an allow.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from consent.model import policy_view
from exchange.decisions.bundle import DECISION
from exchange.errors import ConsentUnavailable, ExchangeError, PolicyUnavailable
from exchange.identity.model import Identity
from exchange.ports import Clock, DecisionPoint
from exchange.store.repository import ResourceRepository


@dataclass(frozen=True)
class Decision:
    allow: bool
    reasons: tuple[str, ...]
    consents: tuple[str, ...]
    policy_revision: str
    form: str = "identified"
    types: dict[str, list[str]] = field(default_factory=dict)
    withhold_labels: tuple[dict[str, Any], ...] = ()

    def allows(self, resource_type: str) -> bool:
        return self.allow and resource_type in self.types

    def audit_view(self) -> dict[str, Any]:
        return {"allow": self.allow, "reasons": list(self.reasons),
                "consents": list(self.consents), "policy_revision": self.policy_revision,
                "form": self.form}


class Decider:
    def __init__(self, point: DecisionPoint, repository: ResourceRepository,
                 clock: Clock) -> None:
        self._point = point
        self._repository = repository
        self._clock = clock
        # resident -> (consent stamp, policy views). The stamp is read from the database on
        # every decision, so a revocation by any worker is seen by the very next request.
        self._views: dict[str, tuple[str, list[dict[str, Any]]]] = {}

    @property
    def revision(self) -> str:
        return self._point.revision

    def consents_for(self, resident: str) -> list[dict[str, Any]]:
        try:
            stamp = self._repository.consent_stamp(resident)
            cached = self._views.get(resident)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            views = [policy_view(orjson.loads(row.body), row.version_id)
                     for row in self._repository.consents_of(resident)]
        except (ExchangeError, ValueError, TypeError, KeyError) as exc:
            raise ConsentUnavailable() from exc
        if len(self._views) > 50_000:
            self._views.clear()
        self._views[resident] = (stamp, views)
        return views

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
               resident: str | None) -> Decision:
        policy_input = self.policy_input(identity, action, types, resident)
        return self.decide_input(policy_input)

    def decide_input(self, policy_input: dict[str, Any]) -> Decision:
        result = self._point.decide(DECISION, policy_input)
        return read_decision(result, self._point.revision)


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
            types={str(t): [str(f) for f in fs] for t, fs in types.items()},
            withhold_labels=tuple(obligations.get("withhold_labels", [])),
        )
    except (KeyError, TypeError, AttributeError):
        raise PolicyUnavailable("The policy answered in an unexpected shape.") from None

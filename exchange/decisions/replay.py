"""Replay past decisions, and preview future ones.

Replay: an audit entry keeps each decision's input with consents named by version; the
policy bundle of every revision is archived. Reading those consent versions back and
evaluating the archived bundle gives the same answer, or the replay says where not.

Preview: "if I grant this, who could see what?": every registered client, for each of
its purposes, decided with and without the draft consent.
"""

import json
from datetime import datetime
from typing import Any

import orjson
import regorus
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from consent.model import policy_view
from exchange.decisions.bundle import DECISION, PolicyBundle
from exchange.decisions.decide import Decider, read_decision
from exchange.errors import NotFound, PolicyUnavailable
from exchange.fhir.search_params import RESIDENT_TYPES
from exchange.identity.model import Identity
from exchange.identity.registry import ClientRegistry
from exchange.store.repository import ResourceRepository
from exchange.store.tables import PolicyRevisionRow

COMPARED = ("allow", "reasons", "consents", "form")


class PolicyArchive:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def keep(self, bundle: PolicyBundle, now: datetime) -> None:
        try:
            with Session(self._engine) as session:
                if session.get(PolicyRevisionRow, bundle.revision) is None:
                    session.add(PolicyRevisionRow(
                        revision=bundle.revision, modules=json.dumps(bundle.modules),
                        data=json.dumps(bundle.data), first_seen=now))
                    session.commit()
        except IntegrityError:
            pass  # another worker archived it first

    def engine_for(self, revision: str) -> regorus.Engine:
        with Session(self._engine) as session:
            row = session.get(PolicyRevisionRow, revision)
        if row is None:
            raise NotFound("That policy revision is not in the archive.")
        engine = regorus.Engine()
        for path, source in json.loads(row.modules):
            engine.add_policy(path, source)
        engine.add_data_json(row.data)
        return engine


class Replayer:
    def __init__(self, archive: PolicyArchive, repository: ResourceRepository) -> None:
        self._archive = archive
        self._repository = repository

    def replay(self, entry: dict[str, Any]) -> list[dict[str, Any]]:
        results = []
        for recorded in entry.get("decisions") or []:
            policy_input = dict(recorded["input"])
            policy_input["consents"] = [self._consent(ref) for ref in policy_input["consents"]]
            engine = self._archive.engine_for(recorded["policy_revision"])
            engine.set_input_json(json.dumps(policy_input))
            try:
                answer = engine.eval_rule(DECISION)
            except RuntimeError as exc:
                raise PolicyUnavailable() from exc
            replayed = read_decision(answer, recorded["policy_revision"]).audit_view()
            same = all(replayed[k] == recorded[k] for k in COMPARED)
            results.append({"same": same,
                            "recorded": {k: recorded[k] for k in COMPARED},
                            "replayed": {k: replayed[k] for k in COMPARED}})
        return results

    def _consent(self, ref: str) -> dict[str, Any]:
        # "Consent/<id>/_history/<version>"
        _type, rid, _history, version = ref.split("/")
        row = self._repository.read("Consent", rid, int(version))
        if row is None or row.deleted:
            raise NotFound("A consent version the decision relied on is missing.")
        return policy_view(orjson.loads(row.body), row.version_id, self._repository.zone)


def preview(decider: Decider, registry: ClientRegistry, resident: str,
            draft: dict[str, Any], now: int) -> list[dict[str, Any]]:
    """Who could see which parts of the record now, and with the draft consent granted."""
    current = decider.consents_for(resident)
    proposed = [*current, policy_view({**draft, "id": "draft"}, 0, decider.zone)]
    out = []
    for client in registry.list():
        if not client.active:
            continue
        for purpose in client.purposes:
            who = Identity("client", client.client_id, client.organization,
                           client.organization_kind, client.scopes, purpose)
            seen = {}
            for label, consents in (("now", current), ("with_draft", proposed)):
                decision = decider.decide_input({
                    "action": "read", "resource_types": sorted(RESIDENT_TYPES),
                    "requester": who.policy_view(), "resident": resident,
                    "consents": consents, "now": now})
                seen[label] = {"types": sorted(decision.types) if decision.allow else [],
                               "form": decision.form}
            if seen["now"] != seen["with_draft"]:
                out.append({"client": client.client_id, "name": client.name,
                            "organization": client.organization, "purpose": purpose,
                            **seen})
    return out

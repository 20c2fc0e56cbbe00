"""What-if for a resident: who could see what if a draft consent were granted."""

from typing import Any

import orjson

from consent.model import check_consent
from exchange.decisions.replay import preview
from exchange.errors import Forbidden
from exchange.fhir.validation import validate_resource
from exchange.gate.context import Disclosure, RequestContext
from exchange.gate.road import Road
from exchange.identity.model import Identity
from exchange.identity.registry import ClientRegistry
from exchange.wording import PURPOSES, TYPES, zh_en


class ConsentPreview:
    def __init__(self, road: Road, registry: ClientRegistry) -> None:
        self._road = road
        self._registry = registry

    def preview(self, ctx: RequestContext, who: Identity, draft_consent: Any) -> Disclosure:
        """What-if: who could see what if this consent were granted."""
        with self._road.recorder.recording(ctx, who, "preview", {"type": "Consent"}) as draft:
            resident = who.resident
            consent = validate_resource(draft_consent, expected_type="Consent",
                                        here=self._road.here)
            check_consent(consent)
            patient = consent["patient"]["reference"].split("/", 1)[1]
            decision = self._road.deciding.decider.decide(who, "create", ["Consent"], patient)
            draft.decisions.append(decision)
            if resident is None or patient != resident or not decision.allows("Consent"):
                draft.outcome = "denied"
                raise Forbidden("Only the resident, or their proxy, may preview their consent.")
            draft.residents.add(patient)
            changes = preview(self._road.deciding.decider, self._registry, patient, consent,
                              int(self._road.clock.now().timestamp()))
            names = []
            for change in changes:
                added = sorted(set(change["with_draft"]["types"]) - set(change["now"]["types"]))
                purpose_zh, purpose_en = zh_en(PURPOSES, change["purpose"])
                types_zh = "、".join(zh_en(TYPES, t)[0] for t in added)
                types_en = ", ".join(zh_en(TYPES, t)[1] for t in added)
                names.append({**change, "text": {
                    "zh": f"{change['name']} 将可以为「{purpose_zh}」查看您的{types_zh}"
                          + ("（不含姓名）" if change["with_draft"]["form"] == "pseudonymized"
                             else "") + "。",
                    "en": f"{change['name']} could see your {types_en} for {purpose_en}"
                          + (" (without your name)"
                             if change["with_draft"]["form"] == "pseudonymized" else "")
                          + "."}})
            return Disclosure(200, orjson.dumps({"resident": patient, "changes": names}),
                              {"Content-Type": "application/json"})

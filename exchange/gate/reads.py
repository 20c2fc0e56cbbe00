"""Reads: one resource (or one version of it), a consent's signed receipt, and a resident's
whole record (``$everything``)."""

from typing import Any

import orjson

from consent.receipts import build_receipt, sign_receipt
from exchange.errors import Gone, NotFound
from exchange.fhir.ids import check_id
from exchange.fhir.search_params import RESIDENT_TYPES
from exchange.gate.context import (
    Disclosure,
    RequestContext,
    check_target,
    note_attempt,
    note_resident,
    version_headers,
)
from exchange.gate.road import Road
from exchange.identity.model import Identity


class Reads:
    def __init__(self, road: Road) -> None:
        self._road = road

    def read(self, ctx: RequestContext, who: Identity, rtype: str, rid: str,
             version: int | None = None) -> Disclosure:
        road = self._road
        action = "vread" if version is not None else "read"
        with road.recorder.recording(ctx, who, action, {"type": rtype, "id": rid,
                                                        "version": version}) as draft:
            check_target(rtype, rid)
            state, decision = road.deciding.decide_existing(draft, who, "read", rtype, rid)
            row = road.repository.read(rtype, rid, version)
            if row is None:
                raise NotFound()
            if row.patient_id != state.patient_id:
                # A version filed under another resident is decided on that resident.
                decision = road.deciding.decide(draft, who, "read", [rtype], row.patient_id)
                if not decision.allows(rtype):
                    draft.outcome = "denied"
                    raise NotFound()
            if row.deleted:
                raise Gone("The resource was deleted.")
            resource = road.shaping.shape(row, decision, who)
            if resource is None:
                draft.outcome = "denied"
                raise NotFound()
            note_resident(draft, row)
            return Disclosure(200, orjson.dumps(resource), version_headers(row))

    def consent_receipt(self, ctx: RequestContext, who: Identity, rid: str,
                        version: int | None = None) -> Disclosure:
        """The signed receipt of one version of a consent, for whoever may read it."""
        road = self._road
        with road.recorder.recording(ctx, who, "read", {
                "type": "Consent", "id": rid, "version": version, "view": "receipt"}) as draft:
            check_id(rid)
            _, decision = road.deciding.decide_existing(draft, who, "read", "Consent", rid)
            row = road.repository.read("Consent", rid, version)
            if row is None:
                raise NotFound()
            revoked = row.deleted
            if revoked:  # a deletion revokes what the version before it said
                row = road.repository.read("Consent", rid, row.version_id - 1) or row
            consent: dict[str, Any] = orjson.loads(row.body)
            receipt = build_receipt(consent, row.version_id + (1 if revoked else 0), revoked,
                                    decision.policy_revision, road.clock.now())
            body = sign_receipt(receipt, road.sign)
            return Disclosure(200, orjson.dumps(body), {"Content-Type": "application/json"})

    def everything(self, ctx: RequestContext, who: Identity, patient_id: str) -> Disclosure:
        road = self._road
        with road.recorder.recording(ctx, who, "everything",
                                     {"type": "Patient", "id": patient_id}) as draft:
            check_id(patient_id)
            state = road.repository.current("Patient", patient_id)
            if state is None or state.deleted:
                raise NotFound()
            note_attempt(draft, patient_id)
            decision = road.deciding.decide(draft, who, "read", sorted(RESIDENT_TYPES),
                                            patient_id)
            if not decision.allows("Patient"):
                draft.outcome = "denied"
                raise NotFound()
            rows = road.repository.compartment(patient_id, sorted(decision.types))
            entries = []
            for row in rows:
                entry = road.entry(row, road.shaping.shape(row, decision, who), "match")
                if entry is not None:
                    entries.append(entry)
            draft.residents.add(patient_id)
            draft.details["total"] = len(entries)
            bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
                      "link": [{"relation": "self", "url":
                                f"{road.fhir_base}/Patient/{patient_id}/$everything"}],
                      "entry": entries}
            return Disclosure(200, orjson.dumps(bundle))

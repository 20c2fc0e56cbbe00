"""Reads: one resource (or one version of it), a consent's signed receipt, and a resident's
whole record (``$everything``)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from consent.receipts import build_receipt, sign_receipt
from exchange.errors import Gone, InvalidRequest, NotFound
from exchange.fhir.ids import check_id
from exchange.fhir.search_params import RESIDENT_TYPES
from exchange.gate.context import (
    AuditDraft,
    Disclosure,
    RequestContext,
    check_target,
    note_attempt,
    note_resident,
    version_headers,
)
from exchange.gate.road import Road
from exchange.gate.shaping import Shapers
from exchange.identity.model import Identity
from exchange.store.repository import StoredResource, as_utc


@dataclass(frozen=True)
class ReadConditions:
    """A conditional read (R4 http.html#cread): the version the caller holds (an ETag,
    weak or strong, or ``*``), and the moment its copy dates from."""

    if_none_match: str | None = None
    if_modified_since: datetime | None = None

    def hold(self, row: StoredResource) -> bool:
        """Whether the caller's copy is current, so that the answer is 304."""
        if self.if_none_match is not None:
            tags = {t.strip().removeprefix("W/").strip('"')
                    for t in self.if_none_match.split(",")}
            return "*" in tags or str(row.version_id) in tags
        if self.if_modified_since is not None:
            # HTTP dates have whole seconds; the store keeps finer ones.
            return as_utc(row.last_updated).replace(microsecond=0) <= self.if_modified_since
        return False


class Reads:
    def __init__(self, road: Road) -> None:
        self._road = road

    def read(self, ctx: RequestContext, who: Identity, rtype: str, rid: str,
             version: int | None = None,
             conditions: ReadConditions | None = None) -> Disclosure:
        """A read or vread; ``conditions`` (``If-None-Match``, ``If-Modified-Since``) turn
        an answer the caller holds already into a 304, decided and recorded all the same:
        a hidden or missing id is the same 404 with or without them."""
        action = "vread" if version is not None else "read"
        with self._road.recorder.recording(ctx, who, action, {
                "type": rtype, "id": rid, "version": version}) as draft:
            row, resource = self.read_in(draft, who, rtype, rid, version)
            headers = version_headers(row)
            if conditions is not None and conditions.hold(row):
                draft.status = 304
                return Disclosure(304, b"", headers)
            return Disclosure(200, orjson.dumps(resource), headers)

    def read_in(self, draft: AuditDraft, who: Identity, rtype: str, rid: str,
                version: int | None = None) -> tuple[StoredResource, dict[str, Any]]:
        """A read within an operation already recording (a batch entry): the row and the
        resource as the caller may see it; NotFound for what it may not."""
        road = self._road
        check_target(rtype, rid)
        state, decision = road.deciding.decide_existing(draft, who, "read", rtype, rid)
        if not road.shaping.by_real_id(who, decision):
            draft.outcome = "denied"
            raise NotFound()
        if version is not None and road.shaping.hides_current(rtype, rid, decision):
            draft.outcome = "denied"
            raise NotFound()
        row = road.repository.read(rtype, rid, version)
        if row is None:
            raise NotFound()
        if (row.patient_id, row.holder) != (state.patient_id, state.holder):
            # A version filed under another resident (or holder) is decided on them.
            decision = road.deciding.decide(draft, who, "read", [rtype], row.patient_id,
                                            row.holder)
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
        return row, resource

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
                                    decision.policy_revision, road.clock.now(), road.zone)
            body = sign_receipt(receipt, road.sign)
            return Disclosure(200, orjson.dumps(body), {"Content-Type": "application/json"})

    def everything(self, ctx: RequestContext, who: Identity, patient_id: str,
                   parameters: Any = None) -> Disclosure:
        """A resident's whole visible record; ``parameters``, the body of a POST, may be
        a Parameters resource naming none (none is supported yet: refused, not ignored,
        since an ignored ``_type`` or ``start`` would release more than was asked)."""
        road = self._road
        with road.recorder.recording(ctx, who, "everything",
                                     {"type": "Patient", "id": patient_id}) as draft:
            check_id(patient_id)
            if parameters is not None and (
                    not isinstance(parameters, dict)
                    or parameters.get("resourceType") != "Parameters"
                    or parameters.get("parameter")):
                raise InvalidRequest("$everything takes no parameters here; POST an empty "
                                     "body or a Parameters resource without parameters.")
            state = road.repository.current("Patient", patient_id)
            if state is None or state.deleted:
                raise NotFound()
            note_attempt(draft, patient_id)
            decision = road.deciding.decide(draft, who, "read", sorted(RESIDENT_TYPES),
                                            patient_id)
            if not decision.allows("Patient") or not road.shaping.by_real_id(who, decision):
                draft.outcome = "denied"
                raise NotFound()
            rows = road.repository.compartment(patient_id, sorted(decision.types))
            entries = []
            shapers: Shapers = {}  # one disclosure (and guard verdict) for the bundle
            for row in rows:
                entry = road.entry(row, road.shaping.shape(row, decision, who, None, shapers),
                                   "match")
                if entry is not None:
                    entries.append(entry)
            draft.residents.add(patient_id)
            draft.details["total"] = len(entries)
            bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
                      "link": [{"relation": "self", "url":
                                f"{road.fhir_base}/Patient/{patient_id}/$everything"}],
                      "entry": entries}
            return Disclosure(200, orjson.dumps(bundle))

"""The write half of the road: create, update, delete, transaction and batch Bundles.

Each write is validated, labelled by the policies, decided for every resident it touches
and applied atomically; a consent write drops the decisions derived from the old consents.
"""

from collections.abc import Sequence
from typing import Any

import orjson

from consent.model import check_consent
from exchange.decisions.decide import Decision
from exchange.decisions.labels import label
from exchange.errors import Conflict, ExchangeError, InvalidResource, NotFound
from exchange.fhir.bundles import plan_entries
from exchange.fhir.dates import to_instant
from exchange.fhir.outcome import operation_outcome
from exchange.fhir.search_params import DIRECTORY_TYPES, RESIDENT_TYPES
from exchange.fhir.validation import validate_resource
from exchange.gate.context import (
    UNKNOWN_RESIDENT,
    AuditDraft,
    Disclosure,
    RequestContext,
    check_target,
    check_type,
    note_resident,
    outcome_of,
    version_headers,
)
from exchange.gate.road import Road
from exchange.identity.model import Identity
from exchange.store.indexing import compartment_of, names_a_resident
from exchange.store.repository import (
    StoredResource,
    Write,
    new_id,
)


class Writes:
    def __init__(self, road: Road) -> None:
        self._road = road
        self._repository = road.repository
        self._decider = road.deciding.decider
        self._recording = road.recorder.recording

    def create(self, ctx: RequestContext, who: Identity, rtype: str,
               resource: Any) -> Disclosure:
        with self._recording(ctx, who, "create", {"type": rtype}) as draft:
            check_type(rtype)
            write = self._prepare(draft, who, "create", rtype, new_id(), resource)
            (stored,) = self._apply([write])
            draft.what["id"] = stored.resource_id
            draft.status = 201
            note_resident(draft, stored)
            headers = version_headers(stored)
            headers["Location"] = f"{self._road.fhir_base}/{rtype}/{stored.resource_id}/_history/" \
                                  f"{stored.version_id}"
            return Disclosure(201, stored.body, headers)

    def update(self, ctx: RequestContext, who: Identity, rtype: str, rid: str,
               resource: Any, if_match: str | None = None) -> Disclosure:
        with self._recording(ctx, who, "update", {"type": rtype, "id": rid}) as draft:
            check_target(rtype, rid)
            if isinstance(resource, dict) and resource.get("id") not in (None, rid):
                raise InvalidResource("The resource id does not match the URL.",
                                      expression=[f"{rtype}.id"])
            write = self._prepare(draft, who, "update", rtype, rid, resource)
            _check_if_match(if_match, self._repository.current(rtype, rid))
            (stored,) = self._apply([write])
            note_resident(draft, stored)
            return Disclosure(200, stored.body, version_headers(stored))

    def delete(self, ctx: RequestContext, who: Identity, rtype: str, rid: str) -> Disclosure:
        with self._recording(ctx, who, "delete", {"type": rtype, "id": rid}) as draft:
            check_target(rtype, rid)
            write = self._prepare(draft, who, "delete", rtype, rid, None)
            self._apply([write])
            draft.status = 204
            return Disclosure(204, b"")

    def bundle(self, ctx: RequestContext, who: Identity, body: Any) -> Disclosure:
        kind = body.get("type") if isinstance(body, dict) else None
        with self._recording(ctx, who, str(kind or "bundle"), {"type": "Bundle"}) as draft:
            if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
                raise InvalidResource("Expected a Bundle.", expression=["Bundle.resourceType"])
            if kind not in ("transaction", "batch"):
                raise InvalidResource("Only transaction and batch Bundles can be posted.",
                                      expression=["Bundle.type"])
            entries = body.get("entry") or []
            if not isinstance(entries, list):
                raise InvalidResource("Bundle.entry must be a list.", expression=["Bundle.entry"])
            if kind == "transaction":
                return self._transaction(draft, who, entries)
            return self._batch(draft, who, entries)

    def _transaction(self, draft: AuditDraft, who: Identity,
                     entries: list[Any]) -> Disclosure:
        planned = plan_entries(entries, new_id)
        seen: set[tuple[str, str]] = set()
        for where, _action, rtype, rid, _resource in planned:
            if (rtype, rid) in seen:
                raise InvalidResource("A transaction may change a resource only once.",
                                      expression=[where])
            seen.add((rtype, rid))
        memo: dict[tuple[str, str, str | None], Decision] = {}
        writes = [self._prepare(draft, who, action, rtype, rid, resource, where=where,
                                memo=memo)
                  for where, action, rtype, rid, resource in planned]
        stored = self._apply(writes)
        for row in stored:
            note_resident(draft, row)
        draft.details["entries"] = len(stored)
        response = {"resourceType": "Bundle", "type": "transaction-response",
                    "entry": [_response_entry(row, w.action) for row, w in zip(stored, writes,
                                                                               strict=True)]}
        return Disclosure(200, orjson.dumps(response))

    def _batch(self, draft: AuditDraft, who: Identity, entries: list[Any]) -> Disclosure:
        out = []
        outcomes = []
        for index, entry in enumerate(entries):
            try:
                ((where, action, rtype, rid, resource),) = plan_entries([entry], new_id,
                                                                        offset=index)
                write = self._prepare(draft, who, action, rtype, rid, resource, where=where)
                (row,) = self._apply([write])
                note_resident(draft, row)
                out.append(_response_entry(row, action))
                outcomes.append("success")
            except ExchangeError as exc:
                out.append({"response": {
                    "status": f"{exc.status}",
                    "outcome": operation_outcome("error", exc.issue_type, exc.message,
                                                 code=exc.code, expression=exc.expression)}})
                outcomes.append(outcome_of(exc))
        draft.details["entries"] = outcomes
        return Disclosure(200, orjson.dumps({"resourceType": "Bundle",
                                             "type": "batch-response", "entry": out}))

    def _prepare(self, draft: AuditDraft, who: Identity, action: str, rtype: str, rid: str,
                 resource: Any, where: str | None = None,
                 memo: dict[tuple[str, str, str | None], Decision] | None = None) -> Write:
        """Validate a write and decide it for every resident it touches.

        ``memo`` shares decisions between the entries of one transaction: the same client,
        action, type and resident get the same answer within one request.
        """
        check_target(rtype, rid)
        if action == "delete":
            self._require_readable(draft, who, rtype, rid)
            self._road.deciding.decide_existing(draft, who, "delete", rtype, rid, live=True)
            return Write("delete", rtype, rid)
        body = validate_resource(resource, where=where, expected_type=rtype)
        if rtype == "Consent":
            check_consent(body)
        body = label(self._decider, {**body, "id": rid})
        resident = compartment_of(body)
        if rtype in RESIDENT_TYPES and resident is None:
            raise InvalidResource("The resource must name the resident it belongs to.",
                                  expression=[where or rtype])
        if rtype in DIRECTORY_TYPES and names_a_resident(body):
            # Every client reads the directory: a Device implanted in a resident would tell
            # them all who carries it. Such a record belongs in the resident's own record.
            raise InvalidResource("A directory record names no resident.",
                                  expression=[where or rtype])
        if action == "update":  # decided for the resident it belongs to now, too
            self._require_readable(draft, who, rtype, rid)
            self._road.deciding.decide_existing(draft, who, "update", rtype, rid, live=True)
        key = (action, rtype, resident)
        if memo is not None and key in memo:
            decision = memo[key]
        else:
            if rtype != "Patient" and resident is not None:
                patient = self._repository.current("Patient", resident)
                if patient is None or patient.deleted:
                    raise InvalidResource(UNKNOWN_RESIDENT, expression=[where or rtype])
            decision = self._road.deciding.decide(draft, who, action, [rtype], resident)
            if memo is not None:
                memo[key] = decision
        if not decision.allows(rtype):
            draft.outcome = "denied"
            raise InvalidResource(UNKNOWN_RESIDENT, expression=[where or rtype])
        return Write(action, rtype, rid, body)  # type: ignore[arg-type]

    def _require_readable(self, draft: AuditDraft, who: Identity, rtype: str,
                          rid: str) -> None:
        """A write is a disclosure too: what the caller could not read (another resident,
        a withheld label, an unconsented category), it cannot change or delete, and it
        learns no more than a missing id would tell."""
        _, decision = self._road.deciding.decide_existing(draft, who, "read", rtype, rid,
                                                          live=True)
        row = self._repository.read(rtype, rid)
        if row is None or row.deleted or not self._road.shaping.visible(row, decision):
            draft.outcome = "denied"
            raise NotFound()

    def _apply(self, writes: Sequence[Write]) -> list[StoredResource]:
        stored = self._repository.apply(writes)
        for row in stored:
            if row.resource_type == "Consent" and row.patient_id is not None:
                self._decider.invalidate(row.patient_id)
        return stored


def _check_if_match(if_match: str | None, state: Any) -> None:
    if if_match is None or state is None:
        return
    expected = if_match.removeprefix("W/").strip('"')
    if expected != str(state.version_id):
        raise Conflict("The resource has changed since that version (If-Match).")


def _response_entry(row: StoredResource, action: str) -> dict[str, Any]:
    status = {"create": "201 Created", "update": "200 OK", "delete": "204 No Content"}[action]
    response: dict[str, Any] = {"status": status, "etag": f'W/"{row.version_id}"',
                                "lastModified": to_instant(row.last_updated)}
    if action != "delete":
        response["location"] = f"{row.resource_type}/{row.resource_id}/_history/" \
                               f"{row.version_id}"
    return {"response": response}

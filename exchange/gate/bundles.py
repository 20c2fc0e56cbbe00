"""Transaction and batch Bundles: one operation, one audit entry, whose entries write
through the write step and read through the very read and search operations a single
request uses (their ``*_in`` forms, which record into the Bundle's entry).

A Bundle composes the operations, as the gate does, so it is not one of the independent
operations itself. R4 processes a transaction's reads after its writes: here the writes
are applied atomically first, then each GET entry is answered in its place; a read that
fails is that entry's error, since the writes it followed are already committed.

A transaction's conditional entries (a POST's ``ifNoneExist``, ``PUT`` or ``DELETE
Type?criteria``) are all matched first, by the caller's own search, against the records
as they are before it; R4 fails a transaction whose entries, conditions resolved, change
one resource twice, and so does this. A batch matches each entry in its turn.
"""

import time
from typing import Any

import orjson

from exchange.errors import ExchangeError, InvalidResource, NotFound
from exchange.fhir.bundles import (
    Planned,
    check_full_urls,
    conditional_target,
    plan_entries,
    read_target,
)
from exchange.fhir.dates import to_instant
from exchange.fhir.outcome import operation_outcome
from exchange.gate.context import (
    AuditDraft,
    Disclosure,
    RequestContext,
    check_type,
    note_resident,
    outcome_of,
)
from exchange.gate.reads import Reads
from exchange.gate.road import Road
from exchange.gate.searches import Searches
from exchange.gate.writing import Memo, Writer, check_if_match
from exchange.identity.model import Identity
from exchange.store.repository import StoredResource, Write, new_id


class Bundles:
    def __init__(self, road: Road, writer: Writer, reads: Reads, searches: Searches) -> None:
        self._road = road
        self._writer = writer
        self._reads = reads
        self._searches = searches

    def bundle(self, ctx: RequestContext, who: Identity, body: Any) -> Disclosure:
        kind = body.get("type") if isinstance(body, dict) else None
        with self._road.recorder.recording(ctx, who, str(kind or "bundle"),
                                           {"type": "Bundle"}) as draft:
            if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
                raise InvalidResource("Expected a Bundle.", expression=["Bundle.resourceType"])
            if kind not in ("transaction", "batch"):
                raise InvalidResource("Only transaction and batch Bundles can be posted.",
                                      expression=["Bundle.type"])
            entries = body.get("entry") or []
            if not isinstance(entries, list):
                raise InvalidResource("Bundle.entry must be a list.", expression=["Bundle.entry"])
            check_full_urls(entries)
            if kind == "transaction":
                out = self._transaction(draft, who, entries)
            else:
                out = self._batch(draft, who, entries)
            response: dict[str, Any] = {"resourceType": "Bundle", "type": f"{kind}-response"}
            if out:  # an empty transaction is answered with an empty response (R4)
                response["entry"] = out
            return Disclosure(200, orjson.dumps(response))

    def _matched(self, draft: AuditDraft, who: Identity, entries: list[Any],
                 offset: int = 0) -> dict[int, str]:
        """The resources conditional entries find, by entry index: a POST's
        ``ifNoneExist``, a ``PUT`` or ``DELETE`` of ``Type?criteria``. Each is matched by
        the same step as the interaction alone (``Writer.match``), through the caller's
        own search: a record it may not see is no match, so it is never reused, changed
        or deleted, and the entry answers as if it did not exist. More than one match is
        a 412 (the whole transaction; in a batch, that entry).

        As the conditional update alone: a ``PUT`` whose body names an id that matches
        nothing is answered as for a missing id (no update as create), and one whose id
        is not that of its match is a 422."""
        matched: dict[int, str] = {}
        for index, entry in enumerate(entries, start=offset):
            request = entry.get("request") if isinstance(entry, dict) else None
            if not isinstance(request, dict):
                continue
            where = f"Bundle.entry[{index}]"
            method = request.get("method")
            url = str(request.get("url") or "")
            if method == "POST" and request.get("ifNoneExist") is not None:
                action, rtype = "create", url.strip("/").split("?")[0]
                criteria = str(request["ifNoneExist"])
            elif method in ("PUT", "DELETE") \
                    and (target := conditional_target(url, where)) is not None:
                action = "update" if method == "PUT" else "delete"
                rtype, criteria = target
            else:
                continue
            check_type(rtype)
            existing = self._writer.match(draft, who, action, rtype, criteria, where)
            resource = entry.get("resource")
            given = resource.get("id") if isinstance(resource, dict) else None
            if method == "PUT" and existing is None and given is not None:
                raise NotFound()
            if method == "PUT" and existing is not None \
                    and given not in (None, existing[0].resource_id):
                raise InvalidResource("The resource id is not that of the one resource the "
                                      "criteria match.", expression=[f"{where}.resource.id"])
            draft.details.setdefault("conditional", {})[str(index)] = \
                "matched" if existing is not None else "no match"
            if existing is not None:
                matched[index] = f"{rtype}/{existing[0].resource_id}"
        return matched

    def _transaction(self, draft: AuditDraft, who: Identity,
                     entries: list[Any]) -> list[dict[str, Any]]:
        planned = plan_entries(entries, new_id, matched=self._matched(draft, who, entries))
        seen: set[tuple[str, str]] = set()
        for where, action, rtype, rid, _resource in planned:
            if action in ("get", "none"):
                continue
            if (rtype, rid) in seen:
                raise InvalidResource("A transaction may change a resource only once.",
                                      expression=[where])
            seen.add((rtype, rid))
        draft.discloses = all(p[1] == "get" for p in planned)
        memo: Memo = {}
        writes = {index: self._write(draft, who, entries[index], item, memo)
                  for index, item in enumerate(planned)
                  if item[1] not in ("get", "match", "none")}
        applied = self._writer.apply(draft, list(writes.values()))
        stored = dict(zip(writes, applied, strict=True))
        out: list[dict[str, Any]] = []
        reads: list[str] = []
        for index, (where, action, _, _, url) in enumerate(planned):
            if action == "get":
                entry, outcome = self._answer_get(draft, who, where, url)
                out.append(entry)
                reads.append(outcome)
            elif action == "match":
                out.append(self._match_entry(planned[index]))
            elif action == "none":
                out.append(_NOTHING_DELETED)
            else:
                out.append(_response_entry(stored[index], action))
                note_resident(draft, stored[index])
        draft.details["entries"] = len(out)
        if reads:
            draft.details["reads"] = reads
        return out

    def _batch(self, draft: AuditDraft, who: Identity,
               entries: list[Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        outcomes: list[str] = []
        reads_only = True
        for index, entry in enumerate(entries):
            started = time.perf_counter()
            try:
                (item,) = plan_entries([entry], new_id, offset=index,
                                       matched=self._matched(draft, who, [entry], index))
                where, action, _, _, url = item
                if action in ("match", "none"):
                    out.append(self._match_entry(item) if action == "match"
                               else _NOTHING_DELETED)
                    outcomes.append("success")
                    continue
                if action == "get":
                    answered, outcome = self._answer_get(draft, who, where, url)
                    out.append(answered)
                    outcomes.append(outcome)
                    continue
                reads_only = False
                (row,) = self._writer.apply(draft, [self._write(draft, who, entry, item)])
                note_resident(draft, row)
                out.append(_response_entry(row, action))
                outcomes.append("success")
            except ExchangeError as exc:
                self._hold_not_found(exc, started)
                out.append(_error_entry(exc))
                outcomes.append(outcome_of(exc))
        draft.discloses = reads_only
        draft.details["entries"] = outcomes
        return out

    def _match_entry(self, item: Planned) -> dict[str, Any]:
        """A conditional create that found its resource: 200 with where it is, as R4
        answers the same request alone."""
        _, _, rtype, rid, _ = item
        row = self._road.repository.current(rtype, rid)
        version = row.version_id if row is not None else 1
        return {"response": {"status": "200 OK", "etag": f'W/"{version}"',
                             "location": f"{rtype}/{rid}/_history/{version}"}}

    def _write(self, draft: AuditDraft, who: Identity, entry: dict[str, Any], item: Planned,
               memo: Memo | None = None) -> Write:
        where, action, rtype, rid, resource = item
        write = self._writer.prepare(draft, who, action, rtype, rid, resource, where=where,
                                     memo=memo)
        if_match = entry["request"].get("ifMatch")
        if action != "create" and isinstance(if_match, str):
            check_if_match(if_match, self._road.repository.current(rtype, rid))
        return write

    def _answer_get(self, draft: AuditDraft, who: Identity, where: str,
                    url: str) -> tuple[dict[str, Any], str]:
        """One GET entry, answered as the same request alone would be (a hidden id is
        the same 404 as a missing one, and takes as long)."""
        started = time.perf_counter()
        try:
            target = read_target(url, where)
            if target.kind == "search":
                found = self._searches.search_in(draft, who, target.resource_type,
                                                 list(target.pairs))
                draft.details.pop("total", None)
                draft.details.pop("k_anonymity", None)
                return {"resource": found, "response": {"status": "200 OK"}}, "success"
            version = target.version if target.kind == "vread" else None
            row, resource = self._reads.read_in(draft, who, target.resource_type,
                                                target.resource_id, version)
            return {"fullUrl": f"{self._road.fhir_base}/{row.reference}",
                    "resource": resource,
                    "response": {"status": "200 OK", "etag": f'W/"{row.version_id}"',
                                 "lastModified": to_instant(row.last_updated)}}, "success"
        except ExchangeError as exc:
            self._hold_not_found(exc, started)
            return _error_entry(exc), outcome_of(exc)

    def _hold_not_found(self, exc: ExchangeError, started: float) -> None:
        if exc.conceals:
            self._road.recorder.hold_not_found(started)


# A conditional delete that matched nothing the caller may see: nothing deleted, and the
# same 204 as the interaction alone answers (a 404 would differ only for a hidden match).
_NOTHING_DELETED = {"response": {"status": "204 No Content"}}


def _error_entry(exc: ExchangeError) -> dict[str, Any]:
    return {"response": {"status": f"{exc.status}",
                         "outcome": operation_outcome("error", exc.issue_type, exc.message,
                                                      code=exc.code,
                                                      expression=exc.expression)}}


def _response_entry(row: StoredResource, action: str) -> dict[str, Any]:
    status = {"create": "201 Created", "update": "200 OK", "delete": "204 No Content"}[action]
    response: dict[str, Any] = {"status": status, "etag": f'W/"{row.version_id}"',
                                "lastModified": to_instant(row.last_updated)}
    if action != "delete":
        response["location"] = f"{row.resource_type}/{row.resource_id}/_history/" \
                               f"{row.version_id}"
    return {"response": response}

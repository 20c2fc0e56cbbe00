"""The write half of the road: create (also conditional, ``If-None-Exist``), update (also
conditional, ``PUT [type]?criteria``, and by JSON Patch), delete (also conditional).

Every conditional interaction matches through the search machinery, within the caller's
decisions (``matching``): a resource the caller may not see is no match. So a hidden
record is never returned, never changed and never deleted by a condition, and a condition
never answers differently because of one.
"""

from typing import Any

import jsonpatch
import orjson

from exchange.errors import InvalidRequest, InvalidResource, NotFound
from exchange.fhir.validation import MAX_DEPTH, check_depth
from exchange.gate.context import (
    AuditDraft,
    Disclosure,
    RequestContext,
    check_target,
    check_type,
    note_resident,
    version_headers,
)
from exchange.gate.road import Road
from exchange.gate.writing import Writer, check_if_match
from exchange.identity.model import Identity
from exchange.store.repository import StoredResource, new_id

# A patch may not rewrite what names the resource: R4 says it patches one resource.
_FIXED = ("/resourceType", "/id")


class Writes:
    def __init__(self, road: Road) -> None:
        self._road = road
        self._writer = Writer(road)
        self._recording = road.recorder.recording

    def create(self, ctx: RequestContext, who: Identity, rtype: str, resource: Any,
               if_none_exist: str | None = None) -> Disclosure:
        what: dict[str, Any] = {"type": rtype}
        if if_none_exist is not None:
            what["if_none_exist"] = if_none_exist
        with self._recording(ctx, who, "create", what) as draft:
            check_type(rtype)
            if ctx.query:
                # Some clients send conditional criteria as a query on POST, which R4
                # does not define: ignoring them would create the duplicate they avoid.
                raise InvalidRequest("A create takes no query parameters; send search "
                                     "criteria in If-None-Exist.")
            if if_none_exist is not None:
                existing = self._writer.match(draft, who, "create", rtype, if_none_exist)
                if existing is not None:
                    # R4: one match is answered with it, and nothing is created.
                    row, shaped = existing
                    draft.what["id"] = row.resource_id
                    draft.details["conditional"] = "matched"
                    return Disclosure(200, orjson.dumps(shaped), version_headers(row))
            write = self._writer.prepare(draft, who, "create", rtype, new_id(), resource)
            (stored,) = self._writer.apply(draft, [write])
            return self._created(draft, stored)

    def update(self, ctx: RequestContext, who: Identity, rtype: str, rid: str,
               resource: Any, if_match: str | None = None) -> Disclosure:
        with self._recording(ctx, who, "update", {"type": rtype, "id": rid}) as draft:
            check_target(rtype, rid)
            return self._update(draft, who, rtype, rid, resource, if_match)

    def conditional_update(self, ctx: RequestContext, who: Identity, rtype: str,
                           criteria: str, resource: Any,
                           if_match: str | None = None) -> Disclosure:
        """``PUT [type]?criteria``: one visible match is updated; none creates the resource
        if it names no id (an id names a resource: updating it as a create would tell a
        hidden one from a missing one, so that is answered as for a missing id); more
        than one is 412."""
        with self._recording(ctx, who, "update", {"type": rtype,
                                                  "query": criteria}) as draft:
            check_type(rtype)
            given = resource.get("id") if isinstance(resource, dict) else None
            existing = self._writer.match(draft, who, "update", rtype, criteria)
            if existing is None:
                if given is not None:
                    raise NotFound()
                write = self._writer.prepare(draft, who, "create", rtype, new_id(), resource)
                (stored,) = self._writer.apply(draft, [write])
                return self._created(draft, stored)
            row, _ = existing
            if given not in (None, row.resource_id):
                raise InvalidResource("The resource id is not that of the one resource the "
                                      "criteria match.", expression=[f"{rtype}.id"])
            draft.what["id"] = row.resource_id
            return self._update(draft, who, rtype, row.resource_id, resource, if_match)

    def patch(self, ctx: RequestContext, who: Identity, rtype: str, rid: str,
              operations: Any, if_match: str | None = None) -> Disclosure:
        """JSON Patch (RFC 6902) on the resource as stored, then validated and decided
        exactly as an update of the result, on the resident before and after.

        Only a caller that sees the whole resource may patch it: the operations would
        otherwise act on (``test``, ``copy``, ``move``) what its disclosure withholds."""
        with self._recording(ctx, who, "patch", {"type": rtype, "id": rid}) as draft:
            check_target(rtype, rid)
            self._writer.check_scope(draft, who, "update", rtype)
            row, decision = self._writer.require_readable(draft, who, rtype, rid)
            check_if_match(if_match, self._road.repository.current(rtype, rid))
            current: dict[str, Any] = orjson.loads(row.body)
            if self._road.shaping.shape(row, decision, who) != current:
                raise InvalidRequest("This resource is disclosed to you in part; send the "
                                     "whole resource with PUT instead of a patch.")
            patched = _apply_patch(current, operations)
            return self._update(draft, who, rtype, rid, patched, None)

    def delete(self, ctx: RequestContext, who: Identity, rtype: str, rid: str) -> Disclosure:
        with self._recording(ctx, who, "delete", {"type": rtype, "id": rid}) as draft:
            check_target(rtype, rid)
            write = self._writer.prepare(draft, who, "delete", rtype, rid, None)
            self._writer.apply(draft, [write])
            draft.status = 204
            return Disclosure(204, b"")

    def conditional_delete(self, ctx: RequestContext, who: Identity, rtype: str,
                           criteria: str) -> Disclosure:
        """``DELETE [type]?criteria``: one visible match is deleted, none is 204 with
        nothing deleted (R4 "does nothing"; a 404 would differ only for a hidden match,
        so nothing differs), more than one is 412."""
        with self._recording(ctx, who, "delete", {"type": rtype,
                                                  "query": criteria}) as draft:
            check_type(rtype)
            existing = self._writer.match(draft, who, "delete", rtype, criteria)
            draft.status = 204
            if existing is None:
                draft.details["conditional"] = "no match"
                return Disclosure(204, b"")
            row, _ = existing
            draft.what["id"] = row.resource_id
            write = self._writer.prepare(draft, who, "delete", rtype, row.resource_id, None)
            self._writer.apply(draft, [write])
            return Disclosure(204, b"")

    def _update(self, draft: AuditDraft, who: Identity, rtype: str, rid: str,
                resource: Any, if_match: str | None) -> Disclosure:
        if isinstance(resource, dict) and resource.get("id") not in (None, rid):
            raise InvalidResource("The resource id does not match the URL.",
                                  expression=[f"{rtype}.id"])
        write = self._writer.prepare(draft, who, "update", rtype, rid, resource)
        check_if_match(if_match, self._road.repository.current(rtype, rid))
        (stored,) = self._writer.apply(draft, [write])
        note_resident(draft, stored)
        return Disclosure(200, stored.body, version_headers(stored))

    def _created(self, draft: AuditDraft, stored: StoredResource) -> Disclosure:
        draft.what["id"] = stored.resource_id
        draft.status = 201
        note_resident(draft, stored)
        headers = version_headers(stored)
        headers["Location"] = f"{self._road.fhir_base}/{stored.resource_type}/" \
                              f"{stored.resource_id}/_history/{stored.version_id}"
        return Disclosure(201, stored.body, headers)


def _apply_patch(resource: dict[str, Any], operations: Any) -> dict[str, Any]:
    if not isinstance(operations, list) or not all(isinstance(o, dict) for o in operations):
        raise InvalidRequest("A JSON Patch is an array of operations.")
    for op in operations:
        path = op.get("path")
        if isinstance(path, str) and any(path == f or path.startswith(f + "/")
                                         for f in _FIXED):
            raise InvalidRequest("A patch may not change resourceType or id.")
        if op.get("op") in ("move", "copy") and op.get("from") in _FIXED:
            raise InvalidRequest("A patch may not move resourceType or id.")
    # Never the library's messages: they may quote the resource's values.
    try:
        patched = jsonpatch.apply_patch(resource, operations)
    except jsonpatch.InvalidJsonPatch:
        raise InvalidRequest("The JSON Patch has a malformed operation.") from None
    except jsonpatch.JsonPatchTestFailed:
        raise InvalidResource("A test operation of the patch failed.") from None
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError,
            ValueError, KeyError, IndexError):
        raise InvalidResource("The JSON Patch cannot be applied to this resource.") from None
    except RecursionError:  # copies of a subtree into itself, deeper than Python goes
        raise InvalidRequest(f"The patched resource is nested deeper than {MAX_DEPTH} "
                             "levels.") from None
    if not isinstance(patched, dict):
        raise InvalidRequest("The JSON Patch must leave a resource.")
    check_depth(patched, "The patched resource")
    return dict(patched)

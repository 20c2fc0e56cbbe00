"""History: of one resource, or of a type across the residents the caller may see. A
version filed under another resident is never disclosed, and a pseudonymized history names
pseudonyms and withholds the real time of each change."""

from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

import orjson

from exchange.decisions.decide import Decision
from exchange.errors import InvalidSearch, NotFound
from exchange.fhir.dates import parse_range, to_instant
from exchange.fhir.ids import check_id
from exchange.fhir.search import DIGITS, SearchQuery
from exchange.fhir.search_params import DIRECTORY_TYPES
from exchange.gate.context import Disclosure, RequestContext, check_type, note_resident
from exchange.gate.deciding import own_holder
from exchange.gate.road import Road
from exchange.gate.shaping import Shapers
from exchange.identity.model import Identity
from exchange.store.repository import StoredResource


class History:
    def __init__(self, road: Road) -> None:
        self._road = road

    def history(self, ctx: RequestContext, who: Identity, rtype: str, rid: str | None,
                pairs: Sequence[tuple[str, str]]) -> Disclosure:
        road = self._road
        with road.recorder.recording(ctx, who, "history", {"type": rtype, "id": rid,
                                                           "query": ctx.query}) as draft:
            check_type(rtype)
            if rid is not None:
                check_id(rid)
            count, since = _history_params(pairs, road.default_count, road.max_count,
                                           road.zone)
            if rid is not None:
                state, decision = road.deciding.decide_existing(draft, who, "read", rtype, rid)
                if road.shaping.hides_current(rtype, rid, decision) \
                        or not road.shaping.by_real_id(who, decision):
                    draft.outcome = "denied"
                    raise NotFound()
                decisions: dict[str | None, Decision] = {state.patient_id: decision}
                rows = road.repository.history(rtype, rid, None, count, since)
            else:
                decisions = road.deciding.decide_residents(draft, who, rtype,
                                                           SearchQuery(rtype),
                                                           include_deleted=True)
                allowed: set[str] | None = {r for r, d in decisions.items()
                                            if r is not None and d.allows(rtype)}
                unattached = decisions.get(None)  # the directory's, or the caller's held
                opened = unattached is not None and unattached.allows(rtype)
                holder = own_holder(who, rtype) if opened else None
                if rtype in DIRECTORY_TYPES:
                    allowed = None if opened else set()
                rows = road.repository.history(rtype, None, allowed, count, since, holder)
            if rid is None:
                rows = self._of_visible_resources(rtype, rows, decisions)
            entries = []
            for row in rows:
                version_decision = decisions.get(row.patient_id)
                if version_decision is None or not version_decision.allows(rtype):
                    continue  # a version filed under another resident is not disclosed here
                note_resident(draft, row)
                entry = self._entry(row, version_decision, who)
                if entry is not None:
                    entries.append(entry)
            if rid is not None and not entries:
                # Every version withheld: answer as for an id that does not exist.
                draft.outcome = "denied"
                raise NotFound()
            path = f"{rtype}/{rid}/_history" if rid else f"{rtype}/_history"
            bundle = {"resourceType": "Bundle", "type": "history", "total": len(entries),
                      "link": [{"relation": "self", "url": road.url(path, pairs)}],
                      "entry": entries}
            return Disclosure(200, orjson.dumps(bundle))

    def _of_visible_resources(self, rtype: str, rows: Sequence[StoredResource],
                              decisions: dict[str | None, Decision]) -> list[StoredResource]:
        """The versions of resources the caller may see as they are now: type history names
        no id that a read, a vread or the instance history would answer as missing."""
        hidden: dict[str, bool] = {}
        for row in rows:
            if row.resource_id not in hidden:
                current = self._road.repository.current(rtype, row.resource_id)
                owner = current.patient_id if current is not None else row.patient_id
                hidden[row.resource_id] = self._road.shaping.hides_current(
                    rtype, row.resource_id, decisions.get(owner))
        return [row for row in rows if not hidden[row.resource_id]]

    def _entry(self, row: StoredResource, decision: Decision,
               who: Identity) -> dict[str, Any] | None:
        shaping = self._road.shaping
        shapers: Shapers = {}
        disclosure = shaping.disclosure(who, decision, shapers)
        identified = disclosure.profile.passes_through
        rid, shaped = row.resource_id, None
        if not row.deleted:
            shaped = shaping.shape(row, decision, who, None, shapers)
            if shaped is None:
                return None
            rid = str(shaped["id"])
        else:
            # A deletion is disclosed only if what it deleted could have been seen.
            before = self._road.repository.read(row.resource_type, row.resource_id,
                                                row.version_id - 1)
            if before is None or before.patient_id != row.patient_id \
                    or not shaping.visible(before, decision):
                return None
            if not identified:  # a deletion names the pseudonym, as the versions before did
                rid = disclosure.context(row.patient_id).mac(f"{row.resource_type}/{rid}")
        response: dict[str, Any] = {"status": "204" if row.deleted else "200",
                                    "etag": f'W/"{row.version_id}"'}
        if identified:  # the real time of a change is withheld with the real dates
            response["lastModified"] = to_instant(row.last_updated)
        entry: dict[str, Any] = {
            "fullUrl": f"{self._road.fhir_base}/{row.resource_type}/{rid}",
            "request": {"method": "DELETE" if row.deleted else
                        ("POST" if row.version_id == 1 else "PUT"),
                        "url": f"{row.resource_type}/{rid}"},
            "response": response}
        if shaped is not None:
            entry["resource"] = shaped
        return entry


def _history_params(pairs: Sequence[tuple[str, str]], default: int,
                    maximum: int, zone: tzinfo) -> tuple[int, Any]:
    count, since = default, None
    for key, value in pairs:
        if key == "_count" and DIGITS.match(value):
            count = min(int(value), maximum)
        elif key == "_since":
            try:
                since = parse_range(value, zone)[0]
            except ValueError:
                raise InvalidSearch("Parameter _since has a malformed instant.") from None
        else:
            raise InvalidSearch(f"Unknown history parameter {key}.")
    return count, since

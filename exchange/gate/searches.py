"""Searches: decide for every resident the query could reach, filter by those decisions in
SQL before counting and paging, shape each match and each included resource."""

from collections.abc import Sequence
from typing import Any

import orjson

from exchange.fhir.search import SearchQuery, parse_search
from exchange.fhir.search_params import DIRECTORY_TYPES
from exchange.gate.context import Disclosure, RequestContext, check_type, note_resident
from exchange.gate.deciding import DecisionCache
from exchange.gate.road import Road
from exchange.gate.shaping import Shapers, union_labels
from exchange.identity.model import Identity
from exchange.privacy.disclosure import searchable
from exchange.privacy.k_anonymity import outcome_entry
from exchange.store.repository import StoredResource


class Searches:
    def __init__(self, road: Road) -> None:
        self._road = road

    def search(self, ctx: RequestContext, who: Identity, rtype: str,
               pairs: Sequence[tuple[str, str]]) -> Disclosure:
        road = self._road
        shaping = road.shaping
        with road.recorder.recording(ctx, who, "search",
                                     {"type": rtype, "query": ctx.query}) as draft:
            check_type(rtype)
            query = parse_search(rtype, pairs, default_count=road.default_count,
                                 max_count=road.max_count)
            decisions = road.deciding.decide_residents(draft, who, rtype, query)
            allowed = {r for r, d in decisions.items() if r is not None and d.allows(rtype)}
            directory = decisions.get(None)
            shapers: Shapers = {}
            # A resident disclosed under a profile never matches on what it hides (a
            # name, a birth date, an unshifted date): not an error, which would tell.
            allowed = {r for r in allowed if searchable(
                query, shaping.disclosure(who, decisions[r], shapers).profile)}
            if rtype in DIRECTORY_TYPES:
                rows: list[StoredResource] = []
                if directory is None or not directory.allows(rtype):
                    total = 0
                else:
                    total, rows = road.repository.search(query, None,
                                                         directory.withhold_labels)
            else:
                labels = union_labels(d for r, d in decisions.items() if r in allowed)
                classes = {r: decisions[r].categories[rtype] for r in allowed
                           if rtype in decisions[r].categories}
                in_play = {shaping.disclosure(who, decisions[r], shapers).profile.name
                           for r in allowed}
                neutral = any(not shapers[p].profile.passes_through for p in in_play)
                if rtype == "Patient" and any(shapers[p].guarded for p in in_play):
                    total, rows = shaping.guarded_search(who, query, allowed, labels, classes,
                                                         decisions, shapers)
                else:
                    total, rows = road.repository.search(query, allowed, labels, classes,
                                                         neutral)
            entries = [road.entry(row, shaping.shape(row, decisions[row.patient_id], who,
                                                     query.elements, shapers), "match")
                       for row in rows]
            entries = [e for e in entries if e is not None]
            per_type: DecisionCache = {(r, rtype): d for r, d in decisions.items()}
            included = [(row, road.deciding.decision_for(draft, who, row, per_type))
                        for row in road.repository.included(rows, query.includes,
                                                            query.revincludes)]
            included = [(row, d) for row, d in included if d.allows(row.resource_type)]
            # Included Patients are a population of their own for the guard.
            include_shapers: Shapers = {}
            shaping.judge(who, [row for row, _ in included],
                          {row.patient_id: d for row, d in included}, include_shapers)
            for row, decision in included:
                shaped = shaping.shape(row, decision, who, None, include_shapers)
                if shaped is not None:
                    entries.append(road.entry(row, shaped, "include"))
                    note_resident(draft, row)
            reports = [d.verdict.report(d.profile.k_anonymity.k)
                       for d in [*shapers.values(), *include_shapers.values()]
                       if d.verdict is not None and d.profile.k_anonymity is not None]
            if reports:
                draft.details["k_anonymity"] = reports
                entries.append(outcome_entry(reports))
            for row in rows:
                note_resident(draft, row)
            draft.details["total"] = total
            bundle = self._searchset(rtype, query, pairs, total, entries)
            return Disclosure(200, orjson.dumps(bundle))

    def _searchset(self, rtype: str, query: SearchQuery, pairs: Sequence[tuple[str, str]],
                   total: int, entries: list[Any]) -> dict[str, Any]:
        url = self._road.url
        base = [(k, v) for k, v in pairs if k != "_offset"]
        links = [{"relation": "self", "url": url(rtype, pairs)}]
        if not query.summary_count and query.count > 0:
            if query.offset + query.count < total:
                links.append({"relation": "next", "url": url(
                    rtype, [*base, ("_offset", str(query.offset + query.count))])})
            if query.offset > 0:
                links.append({"relation": "previous", "url": url(
                    rtype, [*base, ("_offset", str(max(0, query.offset - query.count)))])})
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                                  "total": total, "link": links}
        if entries:
            bundle["entry"] = entries
        return bundle


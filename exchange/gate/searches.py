"""Searches: decide for every resident the query could reach, filter by those decisions in
SQL before counting and paging, shape each match and each included resource."""

from collections.abc import Sequence
from typing import Any

import orjson

from exchange.errors import InvalidSearch
from exchange.fhir.ids import check_id
from exchange.fhir.outcome import operation_outcome
from exchange.fhir.search import COMPARTMENT_CLAUSE, Clause, SearchQuery, parse_search
from exchange.fhir.search_params import RESIDENT_TYPES
from exchange.fhir.summary import summarize
from exchange.gate.context import AuditDraft, Disclosure, RequestContext, check_type, note_resident
from exchange.gate.deciding import DecisionCache
from exchange.gate.matching import find
from exchange.gate.road import Road
from exchange.gate.shaping import Shapers
from exchange.identity.model import Identity
from exchange.privacy.k_anonymity import outcome_entry


def _summarized(resource: dict[str, Any] | None, mode: str | None) -> dict[str, Any] | None:
    return None if resource is None else summarize(resource, mode)


class Searches:
    def __init__(self, road: Road) -> None:
        self._road = road

    def search(self, ctx: RequestContext, who: Identity, rtype: str,
               pairs: Sequence[tuple[str, str]], lenient: bool = False,
               compartment: str | None = None) -> Disclosure:
        """A search; ``lenient`` (``Prefer: handling=lenient``) ignores, and says so, the
        parameters it does not know; ``compartment`` is a resident's (``Patient/{id}/
        {type}``): the same search, within that resident's record."""
        what = {"type": rtype, "query": ctx.query,
                **({"compartment": compartment} if compartment else {})}
        with self._road.recorder.recording(ctx, who, "search", what) as draft:
            bundle = self.search_in(draft, who, rtype, pairs, lenient, compartment)
            pretty = ("_pretty", "true") in pairs
            return Disclosure(200, orjson.dumps(
                bundle, option=orjson.OPT_INDENT_2 if pretty else None))

    def search_in(self, draft: AuditDraft, who: Identity, rtype: str,
                  pairs: Sequence[tuple[str, str]], lenient: bool = False,
                  compartment: str | None = None) -> dict[str, Any]:
        """A search within an operation already recording (a batch entry): the
        searchset Bundle, its residents and decisions noted in ``draft``."""
        road = self._road
        shaping = road.shaping
        check_type(rtype)
        query = parse_search(rtype, pairs, default_count=road.default_count,
                             max_count=road.max_count, lenient=lenient)
        if compartment is not None:
            check_id(compartment)
            if rtype not in RESIDENT_TYPES or rtype == "Patient":
                raise InvalidSearch(f"{rtype} is not in a resident's compartment.")
            query.clauses.append(Clause(COMPARTMENT_CLAUSE, None, (compartment,)))
        found = find(road, draft, who, rtype, query)
        total, rows, decisions, shapers = (found.total, found.rows, found.decisions,
                                           found.shapers)
        entries = [road.entry(row, _summarized(shaping.shape(
            row, decisions[row.patient_id], who, query.elements, shapers), query.summary),
            "match") for row in rows]
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
        if query.ignored:
            draft.details["ignored"] = query.ignored
            entries.append({"resource": operation_outcome(
                "warning", "not-supported",
                "Ignored (Prefer: handling=lenient): " + ", ".join(query.ignored) + "."),
                "search": {"mode": "outcome"}})
        for row in rows:
            note_resident(draft, row)
        draft.details["total"] = total
        return self._searchset(rtype, query, pairs, total, entries)

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


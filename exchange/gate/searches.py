"""Searches: decide for every resident the query could reach, filter by those decisions in
SQL before counting and paging, shape each match and each included resource."""

from collections.abc import Sequence
from typing import Any

import orjson

from exchange.errors import InvalidSearch
from exchange.fhir.ids import check_id
from exchange.fhir.outcome import operation_outcome
from exchange.fhir.search import (
    COMPARTMENT_CLAUSE,
    DIGITS,
    Clause,
    SearchQuery,
    named,
    parse_search,
)
from exchange.fhir.search_params import PARAMS, RESIDENT_TYPES
from exchange.fhir.summary import summarize
from exchange.gate.context import AuditDraft, Disclosure, RequestContext, check_type, note_resident
from exchange.gate.deciding import DecisionCache, own_holder
from exchange.gate.matching import find
from exchange.gate.naming import note_named
from exchange.gate.road import Road
from exchange.identity.model import Identity
from exchange.privacy.k_anonymity import outcome_entry
from exchange.store.indexing import param_values, relative_reference


def _summarized(resource: dict[str, Any] | None, mode: str | None) -> dict[str, Any] | None:
    return None if resource is None else summarize(resource, mode)


HAS_LIMIT = 1000  # the resources one reverse chain (each level of one) may rest on
HAS_DEPTH = 3  # the levels of reverse chains nested in one another


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
        has = [(k, v) for k, v in pairs if k.startswith("_has:")]
        query = parse_search(rtype, [(k, v) for k, v in pairs if not k.startswith("_has:")],
                             default_count=road.default_count, max_count=road.max_count,
                             lenient=lenient, zone=road.zone)
        for key, value in has:
            query.clauses.append(self._reverse_chain(draft, who, rtype, key, value))
        if compartment is not None:
            check_id(compartment)
            if rtype not in RESIDENT_TYPES or rtype == "Patient":
                raise InvalidSearch(f"{rtype} is not in a resident's compartment.")
            query.clauses.append(Clause(COMPARTMENT_CLAUSE, None, (compartment,)))
        note_named(road, draft, query)  # theirs to see, whatever it finds or counts
        found = find(road, draft, who, rtype, query)
        total, rows, decisions, shapers = (found.total, found.rows, found.decisions,
                                           found.shapers)
        entries = [road.entry(row, _summarized(shaping.shape(
            row, decisions[row.patient_id], who, query.elements, shapers), query.summary),
            "match") for row in rows]
        entries = [e for e in entries if e is not None]
        per_type: DecisionCache = {
            (r, rtype, own_holder(who, rtype) if r is None else None): d
            for r, d in decisions.items()}
        included = [(row, road.deciding.decision_for(draft, who, row, per_type))
                    for row in road.repository.included(rows, query.includes,
                                                        query.revincludes)]
        included = [(row, d) for row, d in included if d.allows(row.resource_type)]
        # Included resources leave under the same guards' verdicts as the matches.
        for row, decision in included:
            shaped = shaping.shape(row, decision, who, None, shapers)
            if shaped is not None:
                entries.append(road.entry(row, shaped, "include"))
                note_resident(draft, row)
        reports = [d.verdict.report(d.profile.k_anonymity.k)
                   for d in shapers.values()
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

    def _reverse_chain(self, draft: AuditDraft, who: Identity, rtype: str, key: str,
                       value: str, depth: int = 1) -> Clause:
        """``_has:Observation:patient:code=X``: the ``rtype`` resources that a matching
        Observation points at through ``patient``. The Observations are found by the very
        search the caller could make of them, on the road, decided and filtered: one it
        may not see (another resident's, a withheld label, a type its purpose excludes)
        never makes its target match, so the outer result cannot tell it exists.

        Nested (``_has:Encounter:patient:_has:Observation:encounter:code=X``, up to
        ``HAS_DEPTH`` levels): each level is such a search, of the resources the level
        below points at, so no level ever matches through a record the caller may not
        see, and each rests on at most ``HAS_LIMIT`` resources."""
        parts = key.split(":")
        if len(parts) < 4 or not all(parts[:3]):
            raise InvalidSearch("A reverse chain is _has:Type:reference:parameter.")
        inner_type, ref_name, inner_name = parts[1], parts[2], ":".join(parts[3:])
        check_type(inner_type)
        ref = PARAMS[inner_type].get(ref_name)
        if ref is None or ref.kind != "reference" or rtype not in ref.targets:
            raise InvalidSearch(f"{named(ref_name)} of {inner_type} does not point at "
                                f"{rtype}.")
        # The link itself is read too, so it is one of the inner search's clauses: the
        # checks that keep a search within what the caller is shown (minimization, the
        # profile's searchable parameters) see it. An insurer shown no asserter, or the
        # hub shown performers only under pseudonyms, cannot join through them.
        link = [(f"{ref_name}:missing", "false")]
        if parts[3] == "_has":
            if depth >= HAS_DEPTH:
                raise InvalidSearch(f"Reverse chains may be nested {HAS_DEPTH} deep at "
                                    "most; narrow the search another way.")
            inner = parse_search(inner_type, link, default_count=HAS_LIMIT + 1,
                                 max_count=HAS_LIMIT + 1, zone=self._road.zone)
            inner.clauses.append(self._reverse_chain(draft, who, inner_type, inner_name,
                                                     value, depth + 1))
        else:
            inner = parse_search(inner_type, [(inner_name, value), *link],
                                 default_count=HAS_LIMIT + 1, max_count=HAS_LIMIT + 1,
                                 zone=self._road.zone)
        found = find(self._road, draft, who, inner_type, inner)
        if found.total > HAS_LIMIT:
            raise InvalidSearch(f"A reverse chain may rest on at most {HAS_LIMIT} "
                                "resources; narrow it.")
        ids = {r.split("/", 1)[1] for row in found.rows
               for v in param_values(orjson.loads(row.body), ref)
               if (r := relative_reference(v, self._road.here) or "").startswith(rtype + "/")}
        return Clause("_id", None, tuple(sorted(ids)))

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



# What a system-level search (``GET [base]?_type=…``) may filter and page by: the
# parameters every type has. Anything else is a parameter of some types only.
SYSTEM_PARAMS = frozenset({"_id", "_lastUpdated", "_tag", "_security", "_profile",
                           "_source", "_count", "_offset", "_summary", "_elements",
                           "_pretty", "_format", "_total"})


class SystemSearches:
    """``GET [base]?_type=A,B&…``: one search of each type, on the same road, in one
    recording; the page runs across the types in the order asked. Each type is decided
    for itself, so a type the caller may not see adds nothing, not even to the total."""

    def __init__(self, road: Road, searches: Searches) -> None:
        self._road = road
        self._searches = searches

    def search(self, ctx: RequestContext, who: Identity,
               pairs: Sequence[tuple[str, str]], lenient: bool = False) -> Disclosure:
        with self._road.recorder.recording(ctx, who, "search",
                                           {"type": "*", "query": ctx.query}) as draft:
            types, rest, count, offset, ignored = self._plan(pairs, lenient)
            totals = {t: self._searches.search_in(
                draft, who, t, [*rest, ("_summary", "count")], lenient)["total"]
                for t in types}
            entries: list[Any] = []
            start = 0
            only_count = ("_summary", "count") in rest
            for rtype in types:  # the part of the page that falls in this type's matches
                skip, take = max(0, offset - start), offset + count - max(start, offset)
                start += totals[rtype]
                if only_count or take <= 0 or skip >= totals[rtype]:
                    continue
                page = self._searches.search_in(
                    draft, who, rtype, [*rest, ("_offset", str(skip)),
                                        ("_count", str(min(take, count)))], lenient)
                entries.extend(e for e in page.get("entry", [])
                               if e["search"]["mode"] == "match")
            total = sum(totals.values())
            draft.details["total"] = total
            url = self._road.url
            links = [{"relation": "self", "url": url("", pairs)}]
            base = [(k, v) for k, v in pairs if k != "_offset"]
            if offset + count < total:
                links.append({"relation": "next",
                              "url": url("", [*base, ("_offset", str(offset + count))])})
            bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                                      "total": total, "link": links}
            entries = entries[:count]
            if ignored:
                draft.details["ignored"] = ignored
                entries.append({"resource": operation_outcome(
                    "warning", "not-supported", "Ignored (Prefer: handling=lenient; not "
                    "every type has them): " + ", ".join(ignored) + "."),
                    "search": {"mode": "outcome"}})
            if entries:
                bundle["entry"] = entries
            pretty = ("_pretty", "true") in pairs
            return Disclosure(200, orjson.dumps(
                bundle, option=orjson.OPT_INDENT_2 if pretty else None))

    def _plan(self, pairs: Sequence[tuple[str, str]], lenient: bool
              ) -> tuple[list[str], list[tuple[str, str]], int, int, list[str]]:
        road = self._road
        asked = [v for k, v in pairs if k == "_type"]
        if not asked:
            raise InvalidSearch("A search of the whole server names its types (_type).")
        types = list(dict.fromkeys(t for v in asked for t in v.split(",")))
        for rtype in types:
            check_type(rtype)
        rest, ignored = [], []
        for key, value in pairs:
            if key == "_type":
                continue
            if key.partition(":")[0] not in SYSTEM_PARAMS:
                if lenient:
                    ignored.append(named(key))
                    continue
                raise InvalidSearch("A search of several types filters only by what every "
                                    "type has (_id, _lastUpdated, _tag, _security, "
                                    "_profile, _source).")
            rest.append((key, value))
        count, offset = road.default_count, 0
        for key, value in rest:
            if key in ("_count", "_offset") and not DIGITS.match(value):
                raise InvalidSearch(f"Parameter {key} must be a non-negative integer.")
            if key == "_count":
                count = min(int(value), road.max_count)
            elif key == "_offset":
                offset = int(value)
        rest = [(k, v) for k, v in rest if k not in ("_count", "_offset")]
        return types, rest, count, offset, ignored

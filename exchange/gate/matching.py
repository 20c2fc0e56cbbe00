"""The road's find step, shared by searches and the conditional interactions: decide for
every resident a query could reach, then match in SQL among what those decisions allow,
before counting and paging. A conditional create, update or delete therefore matches
exactly what a search by the same caller would find: a resource it may not see is no
match, never a conflict that would tell it exists."""

from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl

from exchange.decisions.decide import Decision
from exchange.errors import InvalidRequest, InvalidSearch
from exchange.fhir.search import Clause, ReferenceValue, SearchQuery, named, parse_search
from exchange.fhir.search_params import DIRECTORY_TYPES, PARAMS
from exchange.gate.context import AuditDraft
from exchange.gate.deciding import own_holder
from exchange.gate.road import Road
from exchange.gate.shaping import Shapers, union_labels
from exchange.identity.model import Identity
from exchange.privacy.disclosure import searchable
from exchange.store.repository import StoredResource


@dataclass
class Found:
    total: int
    rows: list[StoredResource]
    decisions: dict[str | None, Decision]
    shapers: Shapers = field(default_factory=dict)


CHAIN_LIMIT = 1000  # the resources one chain may rest on


def find(road: Road, draft: AuditDraft, who: Identity, rtype: str,
         query: SearchQuery) -> Found:
    shaping = road.shaping
    refuse_foreign(road, query)
    refuse_hidden(road, who, rtype, query)
    decisions = road.deciding.decide_residents(draft, who, rtype, query)
    allowed = {r for r, d in decisions.items() if r is not None and d.allows(rtype)}
    shapers: Shapers = {}
    # A resident disclosed under a profile never matches on what it hides (a name, a
    # birth date, an unshifted date): not an error, which would tell.
    # Nor on what minimization keeps from it (a payer shown no address finds no one by it).
    allowed = {r for r in allowed if searchable(
        query, shaping.disclosure(who, decisions[r], shapers).profile)
        and kept_by(query, decisions[r], rtype)}
    # The records of no resident held for the caller's organization (policies/held).
    held = decisions.get(None) if rtype not in DIRECTORY_TYPES else None
    holder = own_holder(who, rtype) if held is not None and held.allows(rtype) \
        and kept_by(query, held, rtype) else None
    if allowed or holder is not None or rtype in DIRECTORY_TYPES:
        query = through_chains(road, draft, who, query)  # after the checks, which see chains
    if rtype in DIRECTORY_TYPES:
        directory = decisions.get(None)
        if directory is None or not directory.allows(rtype) \
                or not kept_by(query, directory, rtype):
            return Found(0, [], decisions, shapers)
        total, rows = road.repository.search(query, None, directory.withhold_labels)
        return Found(total, rows, decisions, shapers)
    # A resident the k-anonymity guard suppresses (or never judged) is no match in any
    # type, and counts in no total.
    allowed = shaping.released(who, decisions, allowed, shapers)
    labels = union_labels(d for r, d in decisions.items() if r in allowed)
    classes = {r: decisions[r].categories[rtype] for r in allowed
               if rtype in decisions[r].categories}
    in_play = {shaping.disclosure(who, decisions[r], shapers).profile.name for r in allowed}
    neutral = any(not shapers[p].profile.passes_through for p in in_play)
    # A de-identified page is ordered by the recipient's pseudonyms, never by real ids or
    # times: its order says nothing the pseudonyms do not.
    order = shaping.pseudonym_order(who, rtype) if neutral else None
    total, rows = road.repository.search(query, allowed, labels, classes, neutral, order,
                                         holder)
    return Found(total, rows, decisions, shapers)


def refuse_foreign(road: Road, query: SearchQuery) -> None:
    """A search by a reference to another server's record (an absolute URL under a base
    that is not this exchange's) is a 400: no record here can point at it, since writes
    refuse such references, and read as its ``Type/id`` it would match a local record of
    the same id."""
    for clause in query.clauses:
        for value in clause.values:
            if isinstance(value, ReferenceValue) and value.given is not None \
                    and road.here.local(value.given) is None:
                raise InvalidSearch(f"Parameter {named(clause.name)} names a record on "
                                    "another server; this exchange holds none of them.")


def refuse_hidden(road: Road, who: Identity, rtype: str, query: SearchQuery) -> None:
    """A client whose purpose discloses under a restricting profile may not filter or sort
    by what that profile hides: refused (400) before any resident is decided and any SQL
    runs, so neither a count nor the time taken tells how many residents match."""
    if who.kind != "client" or rtype in DIRECTORY_TYPES:
        return
    floor = road.deciding.decider.decide(who, "search", [rtype], None)
    profile = road.shaping.profiles.get(floor.search_profile)
    if profile is None:
        raise InvalidSearch("This search cannot be judged under the purpose's disclosure.")
    if not searchable(query, profile):
        asked = sorted({named(c.name) for c in query.clauses} | {k for k, _ in query.sort})
        raise InvalidSearch(f"Under the {profile.name} disclosure a search may filter by "
                            f"{', '.join(sorted(profile.search_parameters or ()))} only, "
                            "by coded values, and is ordered by pseudonym; asked: "
                            f"{', '.join(asked)}.")


def through_chains(road: Road, draft: AuditDraft, who: Identity,
                   query: SearchQuery) -> SearchQuery:
    """A chain (``patient.name=王``) matches through the resources the caller could find
    itself by the chained parameter: they are found on the road first (decided for their
    own residents, labels withheld, within what minimization keeps), and the chain becomes
    a reference to those. So a chain never matches on another resident the caller may not
    see, a withheld label, or an element it is not shown."""
    if not any(c.chain is not None for c in query.clauses):
        return query
    clauses = []
    for clause in query.clauses:
        chain = clause.chain
        if chain is None or clause.param is None:
            clauses.append(clause)
            continue
        inner = SearchQuery(chain.target_type, [Clause(chain.param.name, chain.param,
                                                       clause.values)],
                            count=CHAIN_LIMIT + 1)
        found = find(road, draft, who, chain.target_type, inner)
        if found.total > CHAIN_LIMIT:
            raise InvalidSearch(f"A chain may rest on at most {CHAIN_LIMIT} resources; "
                                "narrow it.")
        targets = tuple(ReferenceValue(f"{chain.target_type}/{row.resource_id}")
                        for row in found.rows)
        clauses.append(Clause(clause.param.name, clause.param, targets))
    return replace(query, clauses=clauses)


def kept_by(query: SearchQuery, decision: Decision, rtype: str) -> bool:
    """Whether every parameter the query filters or sorts by reads only elements that the
    decision keeps of the type: a modifier, a chain or a sort never reaches further than
    what the caller would be shown."""
    fields = decision.types.get(rtype) or []
    if "*" in fields:
        return True
    kept = set(fields)
    params = [c.param for c in query.clauses if c.param is not None]
    sorts = [PARAMS[rtype][key] for key, _ in query.sort if key in PARAMS[rtype]]
    # a filter must read only what is kept; a sort, by something that is (a payer shown
    # onsetDateTime sorts by it, though onsetPeriod is not shown)
    return all(p.roots <= kept for p in params) and all(p.roots & kept for p in sorts)


def conditional_query(road: Road, rtype: str, criteria: str) -> SearchQuery:
    """The search a conditional interaction's criteria (``identifier=…&…``) name, parsed
    by the same parser as any search: an unknown parameter is a 400, never ignored (an
    ignored criterion would match, and change, more than the caller meant)."""
    pairs = parse_qsl(criteria, keep_blank_values=True)
    if not pairs:
        raise InvalidRequest("A conditional interaction needs search criteria.")
    query = parse_search(rtype, pairs, default_count=road.default_count,
                         max_count=road.max_count, zone=road.zone)
    if not query.clauses:
        raise InvalidRequest("A conditional interaction needs search criteria, not only "
                             "controls such as _count.")
    # Two rows tell none, one and many apart; the total counts them all.
    return replace(query, count=2, offset=0, includes=[], revincludes=[],
                   summary_count=False, elements=None, sort=[])

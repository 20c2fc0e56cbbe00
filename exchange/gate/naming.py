"""The residents a search names. Its audit entry is theirs to see, in their access
history, whatever it finds: a count that names one (``Observation?patient=X&_summary=
count``) is a fact about them, as much as the records a search returns, and a search that
finds nothing of theirs was still an attempt on their record.

A search that names no one (``Observation?code=…&_summary=count``) is in no resident's
history; it counts many, and its entry of no resident keeps the decisions for oversight.
"""

from exchange.fhir.search import COMPARTMENT_CLAUSE, Clause, ReferenceValue, SearchQuery
from exchange.gate.context import AuditDraft, note_attempt
from exchange.gate.road import Road

# A search by identifier through a chain names the residents it finds, if so few that it
# points at them (a wildcard identifier names nobody in particular).
MAX_NAMED = 10


def note_named(road: Road, draft: AuditDraft, query: SearchQuery) -> None:
    """Note, as attempts on their records, the existing residents ``query`` names: by
    reference (``patient=X``, ``subject=Patient/X``), by compartment (``Patient/X/…``),
    by id (``Patient?_id=X``), or by identifier through a chain
    (``patient.identifier=…``)."""
    named: set[str] = set()
    for clause in query.clauses:
        if clause.name == COMPARTMENT_CLAUSE or (clause.name == "_id"
                                                  and query.resource_type == "Patient"):
            named.update(str(v) for v in clause.values)
        elif clause.param is not None and clause.param.kind == "reference" \
                and clause.chain is None:
            named.update(v.target.split("/", 1)[1] for v in clause.values
                         if isinstance(v, ReferenceValue) and v.target.startswith("Patient/"))
        elif clause.chain is not None and clause.chain.target_type == "Patient" \
                and clause.chain.param.name == "identifier":
            named.update(_by_identifier(road, clause))
    for resident in sorted(named):
        state = road.repository.current("Patient", resident)
        if state is not None and not state.deleted:
            note_attempt(draft, resident)


def _by_identifier(road: Road, clause: Clause) -> set[str]:
    """The residents a chained identifier finds: looked up in the store to know whose
    history the entry belongs in, not to disclose anything."""
    assert clause.chain is not None
    query = SearchQuery("Patient", [Clause(clause.chain.param.name, clause.chain.param,
                                           clause.values)], count=MAX_NAMED + 1)
    _, rows = road.repository.search(query, None)
    found = {row.patient_id for row in rows if row.patient_id is not None}
    return found if len(found) <= MAX_NAMED else set()

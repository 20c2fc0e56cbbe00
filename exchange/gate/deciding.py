"""The road's decide phase (HAPI's ``canSeeResource``): ask the policies, through the
decider, before any resource content is read, and keep every decision in the draft of the
operation's audit entry."""

from collections.abc import Sequence

from exchange.decisions.decide import Decider, Decision
from exchange.errors import NotFound
from exchange.fhir.search import SearchQuery
from exchange.fhir.search_params import DIRECTORY_TYPES
from exchange.gate.context import AuditDraft, note_attempt
from exchange.identity.model import Identity
from exchange.store.repository import CurrentState, ResourceRepository, StoredResource

# (resident, type, holder): a record of no resident is decided on the organization it is
# held for (None for the directory's).
DecisionCache = dict[tuple[str | None, str, str | None], Decision]


def own_holder(who: Identity, rtype: str) -> str | None:
    """The holder whose records of no resident a search of ``rtype`` by ``who`` may reach:
    a client's own organization (``policies/exchange/held``); None for the directory's
    types, which are every client's, and for residents and proxies, who hold none."""
    if rtype in DIRECTORY_TYPES or who.kind != "client":
        return None
    return who.organization


class Deciding:
    def __init__(self, decider: Decider, repository: ResourceRepository) -> None:
        self.decider = decider
        self._repository = repository

    def decide(self, draft: AuditDraft, who: Identity, action: str, types: Sequence[str],
               resident: str | None, holder: str | None = None) -> Decision:
        decision = self.decider.decide(who, action, types, resident, draft.context or None,
                                       holder)
        draft.decisions.append(decision)
        _flag_break_glass(draft, decision)
        return decision

    def decide_existing(self, draft: AuditDraft, who: Identity, action: str, rtype: str,
                        rid: str, *, live: bool = False) -> tuple[CurrentState, Decision]:
        """Decide on a resource that exists (``live``: and is not deleted), for the
        resident it belongs to. One that is missing or refused is the same NotFound."""
        state = self._repository.current(rtype, rid)
        if state is None or (live and state.deleted):
            raise NotFound()
        note_attempt(draft, state.patient_id)
        decision = self.decide(draft, who, action, [rtype], state.patient_id, state.holder)
        if not decision.allows(rtype):
            draft.outcome = "denied"
            raise NotFound()
        return state, decision

    def decide_residents(self, draft: AuditDraft, who: Identity, rtype: str,
                         query: SearchQuery,
                         include_deleted: bool = False) -> dict[str | None, Decision]:
        """Decide, before paging, for every resident the query could reach; under None,
        for the records of no resident the caller may reach (the directory's, or those
        held for its organization: decided whether or not any match, so that the answer
        takes as long either way)."""
        if rtype in DIRECTORY_TYPES:
            return {None: self.decide(draft, who, "search", [rtype], None)}
        if who.resident is not None:
            candidates: set[str | None] = {who.resident}
        elif include_deleted:
            candidates = self._repository.residents_with(rtype)
        else:
            candidates = self._repository.candidate_residents(query)
        decisions: dict[str | None, Decision] = {}
        residents = sorted(c for c in candidates if c is not None)
        self.decider.refresh(residents)
        for resident in residents:
            decision = self.decider.decide(who, "search", [rtype], resident,
                                           draft.context or None)
            decisions[resident] = decision
            if decision.allows(rtype):
                draft.decisions.append(decision)
                _flag_break_glass(draft, decision)
        holder = own_holder(who, rtype)
        if holder is not None:
            held = self.decider.decide(who, "search", [rtype], None, draft.context or None,
                                       holder)
            decisions[None] = held
            if held.allows(rtype):
                draft.decisions.append(held)
        if not any(d.allows(rtype) for d in decisions.values()):
            draft.decisions.extend(list(decisions.values())[:1])
        return decisions

    def decision_for(self, draft: AuditDraft, who: Identity, row: StoredResource,
                     cache: DecisionCache) -> Decision:
        """The decision on one fetched row (an included resource), once per resident and
        type within a response."""
        key = (row.patient_id, row.resource_type, row.holder)
        if key not in cache:
            cache[key] = self.decide(draft, who, "read", [row.resource_type], row.patient_id,
                                     row.holder)
        return cache[key]

    def require(self, draft: AuditDraft, who: Identity, action: str, rtype: str,
                resident: str | None, refusal: Exception) -> Decision:
        """Decide an exchange-side operation (the trail, a re-identification, a preview) on
        one type as a whole; ``refusal`` is raised if denied. No request context enters:
        a stated emergency opens records, never the trail."""
        decision = self.decider.decide(who, action, [rtype], resident)
        draft.decisions.append(decision)
        if not decision.allows(rtype):
            draft.outcome = "denied"
            raise refusal
        return decision


def _flag_break_glass(draft: AuditDraft, decision: Decision) -> None:
    if "break_glass" in decision.reasons and decision.allow:
        draft.details["break_glass"] = draft.context.get("break_glass_reason", "")

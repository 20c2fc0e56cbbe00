"""The road's write step, shared by every operation that changes records (single writes,
conditional ones, patches and Bundle entries): check the token's scopes, validate, label,
decide for every resident the change touches, and apply atomically.

A consent write drops the decisions derived from the old consents.
"""

import re
from collections.abc import Sequence
from functools import partial
from typing import Any

from consent.model import check_consent
from exchange.decisions.decide import Decision
from exchange.decisions.labels import label
from exchange.errors import (
    Forbidden,
    InvalidRequest,
    InvalidResource,
    MultipleMatches,
    NotFound,
    PreconditionFailed,
    UnknownResident,
)
from exchange.fhir.search_params import DIRECTORY_TYPES, RESIDENT_TYPES
from exchange.fhir.validation import validate_resource
from exchange.gate.context import UNKNOWN_RESIDENT, AuditDraft, check_target, note_resident
from exchange.gate.deciding import own_holder
from exchange.gate.labelling import Labelling
from exchange.gate.matching import conditional_query, find
from exchange.gate.road import Road
from exchange.identity.model import Identity
from exchange.store.indexing import compartment_of, names_a_resident, referenced
from exchange.store.repository import CurrentState, StoredResource, Write

# The SMART v2 permission letter of each action, to name the scope a refusal lacks.
SCOPE_LETTERS = {"read": "r", "create": "c", "update": "u", "delete": "d", "search": "s"}

Memo = dict[tuple[str, str, str | None, str | None], Decision]


class Writer:
    def __init__(self, road: Road) -> None:
        self._road = road
        self._repository = road.repository
        self._decider = road.deciding.decider
        self._labelling = Labelling(road)

    def check_scope(self, draft: AuditDraft, who: Identity, action: str, rtype: str,
                    where: str | None = None) -> None:
        """Refuse what the token itself cannot do, before any resident is looked at: the
        caller knows its own scopes, so a 403 that names the one missing tells nothing of
        any record, and is the same whether the target exists, is hidden or is missing.

        Asked of the policies (their ``scope_missing`` reason) with no resident, so that
        no Python re-implements what a scope covers. A directory type (a shared record of
        no resident) that the policies do not open for this write is a 403 too: there is
        no resident whose existence it could reveal.
        """
        decision = self._decider.decide(who, action, [rtype], None, draft.context or None)
        expression = [where] if where else None
        if "scope_missing" in decision.reasons:
            draft.decisions.append(decision)
            draft.outcome = "denied"
            letter = SCOPE_LETTERS[action]
            raise Forbidden(f"The access token's scopes do not allow {action} on {rtype}: "
                            f"ask for system/{rtype}.{letter} (or system/*.{letter}).",
                            expression=expression)
        if rtype in DIRECTORY_TYPES and not decision.allows(rtype):
            draft.decisions.append(decision)
            draft.outcome = "denied"
            raise Forbidden(f"{rtype} is part of the community directory, which belongs to "
                            f"no resident; this client has no permission to {action} it.",
                            expression=expression)

    def prepare(self, draft: AuditDraft, who: Identity, action: str, rtype: str, rid: str,
                resource: Any, where: str | None = None, memo: Memo | None = None) -> Write:
        """Validate a write and decide it for every resident it touches.

        ``memo`` shares decisions between the entries of one transaction: the same client,
        action, type and resident get the same answer within one request.
        """
        check_target(rtype, rid)
        self.check_scope(draft, who, action, rtype, where)
        if action == "delete":
            self.require_readable(draft, who, rtype, rid)
            self._road.deciding.decide_existing(draft, who, "delete", rtype, rid, live=True)
            return Write("delete", rtype, rid)
        here = self._road.here
        body = validate_resource(resource, where=where, expected_type=rtype, here=here)
        if rtype == "Consent":
            check_consent(body)
        body = label(self._decider, {**body, "id": rid})
        resident = compartment_of(body, here)
        derived = resident is None and rtype in RESIDENT_TYPES
        unresolved = False
        if derived:
            resident, unresolved = self._resident_referred_to(draft, who, body,
                                                              where or rtype)
            if action == "update" and resident is None and unresolved:
                # What it rests on is gone or out of sight (its target deleted): it stays
                # in the record it is filed in, and is decided, and read first, there.
                state = self._repository.current(rtype, rid)
                if state is not None and not state.deleted and state.patient_id is not None:
                    resident, unresolved = state.patient_id, False
        # A record about no resident (a supply order, a measure's report, a pooled
        # specimen) is held for the writer's organization: no consent can govern it, and
        # no one else may learn it exists (policies/exchange/held). One that points at a
        # resident's record the caller cannot see (or that does not exist) is about a
        # resident it cannot name: refused, the same for hidden and missing.
        holder = own_holder(who, rtype) if resident is None and not unresolved else None
        if rtype in RESIDENT_TYPES and resident is None and holder is None:
            raise UnknownResident("The resource must name the resident it belongs to, or "
                                  "refer to their records.", expression=[where or rtype])
        if rtype in DIRECTORY_TYPES and names_a_resident(body):
            # Every client reads the directory: a Device implanted in a resident would tell
            # them all who carries it. Such a record belongs in the resident's own record.
            raise InvalidResource("A directory record names no resident.",
                                  expression=[where or rtype])
        if action == "update":  # decided for the resident it belongs to now, too
            current, _ = self.require_readable(draft, who, rtype, rid)
            self._road.deciding.decide_existing(draft, who, "update", rtype, rid, live=True)
            if current.patient_id is not None and resident is None:
                # Taken out of the resident's record, it would leave their sight and their
                # consents' reach, while what it says is still about them.
                raise UnknownResident("A record of a resident stays in their record: the "
                                      "update must still name them, or refer to their "
                                      "records.", expression=[where or rtype])
        key = (action, rtype, resident, holder)
        if memo is not None and key in memo:
            decision = memo[key]
        else:
            if rtype != "Patient" and resident is not None:
                patient = self._repository.current("Patient", resident)
                if patient is None or patient.deleted:
                    raise UnknownResident(UNKNOWN_RESIDENT, expression=[where or rtype])
            decision = self._road.deciding.decide(draft, who, action, [rtype], resident,
                                                  holder)
            if memo is not None:
                memo[key] = decision
        if holder is not None and not decision.allows(rtype):
            draft.outcome = "denied"
            raise Forbidden(f"This {rtype} names no resident, so it would be held for your "
                            f"organization; your purpose of use does not allow {action} "
                            "on it.", expression=[where or rtype])
        if not decision.allows(rtype) or (
                resident is not None and not self._road.shaping.by_real_id(who, decision)):
            draft.outcome = "denied"
            raise UnknownResident(UNKNOWN_RESIDENT, expression=[where or rtype])
        return Write(action, rtype, rid, body,  # type: ignore[arg-type]
                     resident if derived else None, holder)

    def _resident_referred_to(self, draft: AuditDraft, who: Identity, body: dict[str, Any],
                              where: str) -> tuple[str | None, bool]:
        """The resident whose records a record refers to, when it names none itself (a
        Provenance of a DocumentReference, a DetectedIssue implicating a MedicationRequest,
        an AppointmentResponse): what it says is about them, so it is theirs, and their
        consents govern it. Only records the caller may read count, so that one it may not
        see tells it no more than a missing one; records of two residents are refused.
        Also whether it refers to records of the residents' types that it cannot resolve
        (hidden, or missing, alike): a record held for no one, or mis-filed, if so."""
        residents: set[str] = set()
        unresolved = False
        for ref in sorted(set(referenced(body, self._road.here))):
            rtype, rid = ref.split("/", 1)
            if rtype not in RESIDENT_TYPES:
                continue
            state = self._repository.current(rtype, rid)
            if state is None or state.deleted or state.patient_id is None:
                draft.conceals = True  # a hidden record costs a decision and a decryption
                unresolved = unresolved or state is None or state.deleted \
                    or state.holder != own_holder(who, rtype)
                continue
            decision = self._road.deciding.decide(draft, who, "read", [rtype],
                                                  state.patient_id)
            row = self._repository.read(rtype, rid) if decision.allows(rtype) else None
            if row is None or not self._addressable(who, row, decision):
                draft.conceals = True
                unresolved = True
                continue
            residents.add(state.patient_id)
            if len(residents) > 1:
                raise UnknownResident("The resource refers to the records of more than one "
                                      "resident; a record belongs to one.",
                                      expression=[where])
        return (residents.pop() if residents else None), unresolved

    def require_readable(self, draft: AuditDraft, who: Identity, rtype: str,
                         rid: str) -> tuple[StoredResource, Decision]:
        """A write is a disclosure too: what the caller could not read (another resident,
        a withheld label, an unconsented category), it cannot change or delete, and it
        learns no more than a missing id would tell. Returns the current version and the
        read decision on it."""
        _, decision = self._road.deciding.decide_existing(draft, who, "read", rtype, rid,
                                                          live=True)
        row = self._repository.read(rtype, rid)
        if row is None or row.deleted or not self._addressable(who, row, decision):
            draft.outcome = "denied"
            raise NotFound()
        return row, decision

    def _addressable(self, who: Identity, row: StoredResource, decision: Decision) -> bool:
        """Whether the caller may name this record by its real id in a write: it must be
        able to see it, and know it by that id. A recipient of pseudonymized records knows
        only pseudonyms, so a real id learnt elsewhere is as unknown to it as a missing
        one; otherwise its 200 or 404 would link the two and tell the resident's consents."""
        shaping = self._road.shaping
        return shaping.visible(row, decision) and shaping.by_real_id(who, decision)

    def match(self, draft: AuditDraft, who: Identity, action: str, rtype: str,
              criteria: str, where: str | None = None
              ) -> tuple[StoredResource, dict[str, Any]] | None:
        """The one resource a conditional interaction's criteria match among those the
        caller may see, with what it is shown of it (None for none); 412 for more than
        one. The token must cover the write and the search. Shared by the interactions
        alone and by Bundle entries, so a condition matches the same either way: a record
        the caller may not see is no match, never changed, deleted or revealed."""
        self.check_scope(draft, who, action, rtype, where)
        self.check_scope(draft, who, "search", rtype, where)
        query = conditional_query(self._road, rtype, criteria)
        found = find(self._road, draft, who, rtype, query)
        if found.total > 1:
            raise MultipleMatches("The criteria match more than one resource; make them "
                                  "more selective.", expression=[where] if where else None)
        for row in found.rows:
            shaped = self._road.shaping.shape(row, found.decisions[row.patient_id], who,
                                              None, found.shapers)
            if shaped is not None:
                note_resident(draft, row)
                return row, shaped
        return None

    def apply(self, draft: AuditDraft, writes: Sequence[Write]) -> list[StoredResource]:
        """Apply writes within the operation's unit of work: they commit with its audit
        entry, which names each version written. A changed consent is forgotten by the
        decision cache now (the operation's later reads decide on it) and again when its
        transaction ends: a decision in between, here or elsewhere, may have cached the
        consents as they were, or as they were to be had it committed.

        The labels that reach each record from those it points at are settled first
        (``labelling``): the stored records the writes relabel are written with them, in
        the same transaction, and named by the same entry; the answer is the writes' own
        rows, in their order."""
        if not writes:
            return []
        settled, relabelled = self._labelling.settle(writes)
        stored = self._repository.apply([*settled, *relabelled])
        for row in stored:
            note_resident(draft, row)
            draft.written.append((row.patient_id, f"{row.reference}/_history/{row.version_id}"))
            if row.resource_type == "Consent" and row.patient_id is not None:
                self._decider.invalidate(row.patient_id)
                self._repository.after_end(partial(self._decider.invalidate, row.patient_id))
        return stored[:len(settled)]


_ETAG = re.compile(r'\s*(?:\*|(?:W/)?"?([0-9]{1,18})"?)\s*\Z')


def check_if_match(if_match: str | None, state: CurrentState | None) -> None:
    """A version-aware update (R4 http.html#concurrency): a stale ``If-Match`` is 412, a
    malformed one 400 (whether or not the record exists, so that it tells nothing), and
    ``*`` matches whatever version is current (RFC 9110)."""
    if if_match is None:
        return
    match = _ETAG.match(if_match)
    if match is None:
        raise InvalidRequest('If-Match must be a version\'s ETag, W/"n", or *.')
    if state is None or match.group(1) is None:
        return
    if int(match.group(1)) != state.version_id:
        raise PreconditionFailed("The resource has changed since that version (If-Match).")

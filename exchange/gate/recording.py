"""The road's first and last phases: an operation starts a draft of its audit entry, and
completes it, on success or on failure, in the ledger before any answer leaves.

In HAPI's consent-service terms this is ``startOperation`` and
``completeOperationSuccess``/``completeOperationFailure``; the phases in between (decide,
fetch, shape) fill the draft. If the entry cannot be appended, the ledger's error
(``AuditUnavailable``) replaces the answer.
"""

import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from exchange.audit.ledger import AuditLedger
from exchange.decisions.decide import Decider, Decision
from exchange.errors import ConsentChanged, ExchangeError
from exchange.fhir.dates import to_instant
from exchange.gate.context import AuditDraft, RequestContext, mark_recorded, outcome_of
from exchange.identity.model import Identity
from exchange.ports import Clock, Monotonic
from exchange.privacy.request_scrub import Reference, scrub_path, scrub_query

# Actions whose answer carries records: checked once more before they leave if slow.
DISCLOSING = frozenset({"read", "search", "everything", "history"})


class Recorder:
    def __init__(self, ledger: AuditLedger, decider: Decider, clock: Clock,
                 monotonic: Monotonic, not_found_floor: float = 0.0) -> None:
        self._ledger = ledger
        self._not_found_floor = not_found_floor
        self._not_found_took: deque[float] = deque(maxlen=128)
        self._decider = decider
        self._clock = clock
        self._monotonic = monotonic

    @contextmanager
    def recording(self, ctx: RequestContext, who: Identity | None, action: str,
                  what: dict[str, Any]) -> Iterator[AuditDraft]:
        """Start an operation; whatever happens inside, its entry is appended.

        A "not found" leaves no sooner than ``not_found_floor`` after the start: a record
        the caller may not see takes more work to refuse (it is found, decided, perhaps
        decrypted and shaped) than an id that does not exist, and the difference in time
        would tell one from the other. Real time, not the ``Monotonic`` port: this is about
        what a caller's stopwatch sees.
        """
        started = time.perf_counter()
        draft = self.start(ctx, action, what)
        try:
            # What the operation writes commits with its entry, or not at all: a failure
            # anywhere in here, the entry's own included, takes back every write.
            with self._ledger.operation():
                yield draft
                self.complete_success(ctx, who, draft)
        except ExchangeError as exc:
            self.complete_failure(ctx, who, draft, exc.status, outcome_of(exc))
            mark_recorded(exc)
            if exc.conceals:
                _wait_until(started + self._floor(time.perf_counter() - started))
            raise
        except Exception as exc:
            draft.outcome = "error"  # whatever the draft said, the operation broke
            self.complete_failure(ctx, who, draft, 500, "error")
            mark_recorded(exc)
            raise
        else:
            if draft.conceals:
                _wait_until(started + self._floor(time.perf_counter() - started))

    def hold_not_found(self, started: float) -> None:
        """Hold one "not found" within a larger answer (a Bundle's entry) until the floor
        after ``started`` (``time.perf_counter()``), as a whole answer would be held."""
        _wait_until(started + self._not_found_floor)

    def _floor(self, took: float) -> float:
        """How long a "not found" takes at least: the configured floor, or, when the
        exchange is busy and refusals take longer than that, nine in ten of the recent
        ones' time (at most ten times the floor). Under load a fixed floor would be passed
        by every answer, and what the hidden ones cost more would show again."""
        if not self._not_found_floor:
            return 0.0
        self._not_found_took.append(took)
        recent = sorted(self._not_found_took)
        busy = recent[int(len(recent) * 0.9)] if len(recent) >= 16 else 0.0
        return min(max(self._not_found_floor, busy), 10 * self._not_found_floor)

    def start(self, ctx: RequestContext, action: str, what: dict[str, Any]) -> AuditDraft:
        draft = AuditDraft(action, what, started=self._monotonic.seconds())
        if ctx.break_glass_reason:
            draft.context["break_glass_reason"] = ctx.break_glass_reason
        return draft

    def complete_success(self, ctx: RequestContext, who: Identity | None,
                         draft: AuditDraft) -> None:
        """Record a success. A disclosure whose consents changed in flight is not one: it
        raises ``ConsentChanged``, recorded as a denial by ``complete_failure``."""
        try:
            self._check_in_flight(draft)
        except ExchangeError:
            draft.outcome = "denied"
            raise
        outcome, status = draft.outcome, draft.status
        draft.outcome, draft.status = outcome or "success", status or 200
        try:
            self._append(ctx, who, draft)
        except ExchangeError:
            draft.outcome, draft.status = outcome, status  # it is recorded as the failure
            raise

    def complete_failure(self, ctx: RequestContext, who: Identity | None, draft: AuditDraft,
                         status: int, outcome: str) -> None:
        draft.outcome = draft.outcome or outcome
        draft.status = status
        self._append(ctx, who, draft)

    def record_refusal(self, ctx: RequestContext, action: str, reason: str,
                       client_id: str | None = None, status: int = 401) -> None:
        """A refusal before any identity exists (bad token, refused assertion)."""
        draft = AuditDraft(action, {"client_id": client_id}, outcome="refused", status=status,
                           details={"reason": reason})
        self._append(ctx, None, draft)

    def record_public(self, ctx: RequestContext) -> None:
        """A read of what the exchange publishes to anyone (its capability statement,
        public keys, consent templates, the portal's page): no data, but a request that
        reached the server, so it is in the ledger like every other."""
        self._append(ctx, None, AuditDraft("public-read", {"path": ctx.path},
                                           outcome="success", status=200))

    def _check_in_flight(self, draft: AuditDraft) -> None:
        """Revocation reaches work already under way: a disclosure that took longer than
        the consent cache's refresh is checked against the consents as they are now."""
        if (draft.action not in DISCLOSING and not draft.discloses) or \
                self._monotonic.seconds() - draft.started < self._decider.STAMP_SECONDS:
            return
        for decision in draft.decisions:
            resident = decision.input.get("resident")
            if decision.allow and decision.stamp and resident in draft.residents \
                    and not self._decider.still_current(resident, decision.stamp):
                raise ConsentChanged()

    def _append(self, ctx: RequestContext, who: Identity | None, draft: AuditDraft) -> None:
        """One entry per resident the call touched (one entry if it touched none), written
        together in one commit, so each resident's history holds every access to them."""
        reference = self._ledger.resident_reference
        base = {
            "time": to_instant(self._clock.now()),
            "request_id": ctx.request_id,
            "network_address": ctx.address,
            # What was asked, without the values that identify a person: an entry
            # outlives an erasure, so it never holds a resident's name, phone or id.
            "request": {"method": ctx.method, "path": scrub_path(ctx.path, reference),
                        "query": scrub_query(ctx.query, _type_of(draft.what), reference)},
            "action": draft.action,
            "who": who.audit_view() if who else {"kind": "anonymous", "role": "anonymous"},
            "what": _scrubbed(draft.what, reference),
            "outcome": draft.outcome,
            "status": draft.status,
            **({"details": draft.details} if draft.details else {}),
        }
        residents = sorted(draft.residents)
        # What the operation wrote, by version: a resident's entry names their records'
        # versions only; versions of records of no resident go in the entry of no one.
        written: dict[str | None, list[str]] = {}
        for owner, version in draft.written:
            written.setdefault(owner if owner in draft.residents else None, []).append(version)
        if not residents:
            self._ledger.append_many([{**base, "residents": [],
                                       **_written(written.get(None)),
                                       "decisions": _merge_decisions(draft.decisions)}])
            return
        # Each resident's entry holds the decisions about them (and those about no one),
        # never another resident's consents: their history is theirs alone. Decisions about
        # residents the call decided on but disclosed nothing of (a search that found none
        # of their records) go in one entry of no resident, for the compliance officer.
        about_others = [d for d in draft.decisions
                        if d.input.get("resident") not in (None, *residents)]
        of_no_one = written.get(None)
        parts = len(residents) + bool(about_others or of_no_one)
        entries = [{**base, "residents": [r],
                    **({"part_of": parts} if parts > 1 else {}),
                    **_written(written.get(r)),
                    "decisions": _merge_decisions([d for d in draft.decisions
                                                   if d.input.get("resident") in (r, None)])}
                   for r in residents]
        if about_others or of_no_one:
            entries.append({**base, "residents": [], "part_of": parts, **_written(of_no_one),
                            "decisions": _merge_decisions(about_others)})
        self._ledger.append_many(entries)


def _type_of(what: dict[str, Any]) -> str | None:
    rtype = what.get("type")
    return rtype if isinstance(rtype, str) else None


def _scrubbed(what: dict[str, Any], reference: Reference) -> dict[str, Any]:
    """``what`` with the query strings and the path it copied scrubbed like the
    request's (search criteria, ``If-None-Exist``, a public read's path)."""
    if not any(isinstance(what.get(k), str) for k in ("query", "if_none_exist", "path")):
        return what
    out = dict(what)
    for key in ("query", "if_none_exist"):
        if isinstance(out.get(key), str):
            out[key] = scrub_query(out[key], _type_of(what), reference)
    if isinstance(out.get("path"), str):
        out["path"] = scrub_path(out["path"], reference)
    return out


def _written(versions: list[str] | None) -> dict[str, list[str]]:
    return {"written": versions} if versions else {}


def _merge_decisions(decisions: list[Decision]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for d in decisions:
        view = d.audit_view()
        if view not in seen:
            seen.append(view)
    return seen


def _wait_until(moment: float) -> None:
    remaining = moment - time.perf_counter()
    if remaining > 0:
        time.sleep(remaining)

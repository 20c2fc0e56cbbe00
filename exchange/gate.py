"""The one road: identify -> decide -> fetch -> shape -> record.

Every read, search, history, ``$everything`` and write passes through ``Gate``. Routes only
translate HTTP to these calls and back. The identity arrives already verified; the gate asks
the policies before it touches resource content, filters by the decision in SQL before
counting and paging, shapes what it fetched, and appends the audit entry before returning
bytes. If the entry cannot be appended, the caller gets ``AuditUnavailable`` instead.
"""

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import orjson

from consent.receipts import build_receipt, sign_receipt
from exchange.audit.ledger import AuditLedger
from exchange.decisions.decide import Decider, Decision
from exchange.errors import (
    ConsentChanged,
    ExchangeError,
    Gone,
    InvalidSearch,
    NotFound,
)
from exchange.fhir.dates import parse_range, to_instant
from exchange.fhir.search import DIGITS, SearchQuery, parse_search
from exchange.fhir.search_params import DIRECTORY_TYPES, RESIDENT_TYPES
from exchange.identity.model import Identity
from exchange.ports import Clock, KeyProvider
from exchange.privacy.disclosure import Shaper, domain_keys, domain_of, searchable
from exchange.privacy.k_anonymity import outcome_entry
from exchange.privacy.profiles import Profile
from exchange.privacy.shaping import keep_fields, withheld
from exchange.road import (
    AuditDraft,
    Disclosure,
    RequestContext,
    check_type,
    note_attempt,
    note_resident,
    outcome_of,
    version_headers,
)
from exchange.store.repository import ResourceRepository, StoredResource
from exchange.writes import WritePath

# Actions whose answer carries records: checked once more before they leave if slow.
DISCLOSING = frozenset({"read", "search", "everything", "history"})
# The most matches a k-anonymity guard judges at once (it reads every one).
GUARD_LIMIT = 20_000


class Gate(WritePath):
    def __init__(self, repository: ResourceRepository, decider: Decider, ledger: AuditLedger,
                 clock: Clock, keys: KeyProvider, fhir_base: str,
                 default_count: int = 50, max_count: int = 500,
                 profiles: Mapping[str, Profile] | None = None) -> None:
        self.profiles = dict(profiles or {})
        self.repository = repository
        self.decider = decider
        self.ledger = ledger
        self.clock = clock
        self.keys = keys
        self.fhir_base = fhir_base
        self.default_count = default_count
        self.max_count = max_count

    # -- record ---------------------------------------------------------------------------

    @contextmanager
    def recording(self, ctx: RequestContext, who: Identity | None, action: str,
                  what: dict[str, Any]) -> Iterator[AuditDraft]:
        draft = AuditDraft(action, what)
        if ctx.break_glass_reason:
            draft.context["break_glass_reason"] = ctx.break_glass_reason
        try:
            yield draft
        except ExchangeError as exc:
            draft.outcome = draft.outcome or outcome_of(exc)
            draft.status = exc.status
            self._append(ctx, who, draft)
            raise
        except Exception:
            draft.outcome, draft.status = "error", 500
            self._append(ctx, who, draft)
            raise
        else:
            try:
                self._check_in_flight(draft)
            except ExchangeError as exc:
                draft.outcome, draft.status = "denied", exc.status
                self._append(ctx, who, draft)
                raise
            draft.outcome = draft.outcome or "success"
            draft.status = draft.status or 200
            self._append(ctx, who, draft)

    def _check_in_flight(self, draft: AuditDraft) -> None:
        """Revocation reaches work already under way: a disclosure that took longer than
        the consent cache's refresh is checked against the consents as they are now."""
        if draft.action not in DISCLOSING or \
                time.monotonic() - draft.started < self.decider.STAMP_SECONDS:
            return
        for decision in draft.decisions:
            resident = decision.input.get("resident")
            if decision.allow and decision.stamp and resident in draft.residents \
                    and not self.decider.still_current(resident, decision.stamp):
                raise ConsentChanged()

    def _append(self, ctx: RequestContext, who: Identity | None, draft: AuditDraft) -> None:
        """One entry per resident the call touched (one entry if it touched none), written
        together in one commit, so each resident's history holds every access to them."""
        base = {
            "time": to_instant(self.clock.now()),
            "request_id": ctx.request_id,
            "network_address": ctx.address,
            "request": {"method": ctx.method, "path": ctx.path, "query": ctx.query},
            "action": draft.action,
            "who": who.audit_view() if who else {"kind": "anonymous", "role": "anonymous"},
            "what": draft.what,
            "outcome": draft.outcome,
            "status": draft.status,
            "decisions": _merge_decisions(draft.decisions),
            **({"details": draft.details} if draft.details else {}),
        }
        residents = sorted(draft.residents)
        if len(residents) <= 1:
            self.ledger.append_many([{**base, "residents": residents}])
        else:
            self.ledger.append_many([{**base, "residents": [r], "part_of": len(residents)}
                                     for r in residents])

    def record_refusal(self, ctx: RequestContext, action: str, reason: str,
                       client_id: str | None = None, status: int = 401) -> None:
        """A refusal before any identity exists (bad token, refused assertion)."""
        draft = AuditDraft(action, {"client_id": client_id}, outcome="refused", status=status,
                           details={"reason": reason})
        self._append(ctx, None, draft)

    # -- reads ----------------------------------------------------------------------------

    def read(self, ctx: RequestContext, who: Identity, rtype: str, rid: str,
             version: int | None = None) -> Disclosure:
        action = "vread" if version is not None else "read"
        with self.recording(ctx, who, action, {"type": rtype, "id": rid,
                                               "version": version}) as draft:
            check_type(rtype)
            _, decision = self._decide_existing(draft, who, "read", rtype, rid)
            row = self.repository.read(rtype, rid, version)
            if row is None:
                raise NotFound()
            if row.deleted:
                raise Gone("The resource was deleted.")
            resource = self._shape(row, decision, who)
            if resource is None:
                draft.outcome = "denied"
                raise NotFound()
            note_resident(draft, row)
            return Disclosure(200, orjson.dumps(resource), version_headers(row))

    def consent_receipt(self, ctx: RequestContext, who: Identity, rid: str,
                        version: int | None = None) -> Disclosure:
        """The signed receipt of one version of a consent, for whoever may read it."""
        with self.recording(ctx, who, "read", {"type": "Consent", "id": rid,
                                               "version": version, "view": "receipt"}) as draft:
            _, decision = self._decide_existing(draft, who, "read", "Consent", rid)
            row = self.repository.read("Consent", rid, version)
            if row is None:
                raise NotFound()
            revoked = row.deleted
            if revoked:  # a deletion revokes what the version before it said
                row = self.repository.read("Consent", rid, row.version_id - 1) or row
            consent: dict[str, Any] = orjson.loads(row.body)
            receipt = build_receipt(consent, row.version_id + (1 if revoked else 0), revoked,
                                    decision.policy_revision, self.clock.now())
            body = sign_receipt(receipt, self.ledger.sign)
            return Disclosure(200, orjson.dumps(body), {"Content-Type": "application/json"})

    def search(self, ctx: RequestContext, who: Identity, rtype: str,
               pairs: Sequence[tuple[str, str]]) -> Disclosure:
        with self.recording(ctx, who, "search", {"type": rtype, "query": ctx.query}) as draft:
            check_type(rtype)
            query = parse_search(rtype, pairs, default_count=self.default_count,
                                 max_count=self.max_count)
            decisions = self._decide_residents(draft, who, rtype, query)
            allowed = {r for r, d in decisions.items() if r is not None and d.allows(rtype)}
            directory = decisions.get(None)
            shapers: dict[str, Shaper] = {}
            # A resident disclosed under a profile never matches on what it hides (a
            # name, a birth date, an unshifted date): not an error, which would tell.
            allowed = {r for r in allowed if searchable(
                query, self._disclosure(who, decisions[r], shapers).profile)}
            if rtype in DIRECTORY_TYPES:
                rows: list[StoredResource] = []
                if directory is None or not directory.allows(rtype):
                    total = 0
                else:
                    total, rows = self.repository.search(query, None,
                                                         directory.withhold_labels)
            else:
                labels = _union_labels(d for r, d in decisions.items() if r in allowed)
                classes = {r: decisions[r].categories[rtype] for r in allowed
                           if rtype in decisions[r].categories}
                in_play = {self._disclosure(who, decisions[r], shapers).profile.name
                           for r in allowed}
                neutral = any(not shapers[p].profile.passes_through for p in in_play)
                if rtype == "Patient" and any(shapers[p].guarded for p in in_play):
                    total, rows = self._guarded_search(who, query, allowed, labels, classes,
                                                       decisions, shapers)
                else:
                    total, rows = self.repository.search(query, allowed, labels, classes,
                                                         neutral)
            entries = [self._entry(row, self._shape(row, decisions[row.patient_id], who,
                                                    query.elements, shapers), "match")
                       for row in rows]
            entries = [e for e in entries if e is not None]
            per_type: dict[tuple[str | None, str], Decision] = {
                (r, rtype): d for r, d in decisions.items()}
            included = [(row, self._decision_for(draft, who, row, per_type))
                        for row in self.repository.included(rows, query.includes,
                                                            query.revincludes)]
            included = [(row, d) for row, d in included if d.allows(row.resource_type)]
            # Included Patients are a population of their own for the guard.
            include_shapers: dict[str, Shaper] = {}
            self._judge(who, [row for row, _ in included],
                        {row.patient_id: d for row, d in included}, include_shapers)
            for row, decision in included:
                shaped = self._shape(row, decision, who, None, include_shapers)
                if shaped is not None:
                    entries.append(self._entry(row, shaped, "include"))
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

    def everything(self, ctx: RequestContext, who: Identity, patient_id: str) -> Disclosure:
        with self.recording(ctx, who, "everything",
                            {"type": "Patient", "id": patient_id}) as draft:
            state = self.repository.current("Patient", patient_id)
            if state is None or state.deleted:
                raise NotFound()
            note_attempt(draft, patient_id)
            decision = self._decide(draft, who, "read", sorted(RESIDENT_TYPES), patient_id)
            if not decision.allows("Patient"):
                draft.outcome = "denied"
                raise NotFound()
            rows = self.repository.compartment(patient_id, sorted(decision.types))
            entries = []
            for row in rows:
                shaped = self._shape(row, decision, who)
                if shaped is not None:
                    entries.append(self._entry(row, shaped, "match"))
            draft.residents.add(patient_id)
            draft.details["total"] = len(entries)
            bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
                      "link": [{"relation": "self", "url":
                                f"{self.fhir_base}/Patient/{patient_id}/$everything"}],
                      "entry": entries}
            return Disclosure(200, orjson.dumps(bundle))

    def history(self, ctx: RequestContext, who: Identity, rtype: str, rid: str | None,
                pairs: Sequence[tuple[str, str]]) -> Disclosure:
        with self.recording(ctx, who, "history", {"type": rtype, "id": rid,
                                                  "query": ctx.query}) as draft:
            check_type(rtype)
            count, since = _history_params(pairs, self.default_count, self.max_count)
            if rid is not None:
                state, decision = self._decide_existing(draft, who, "read", rtype, rid)
                decisions: dict[str | None, Decision] = {state.patient_id: decision}
                allowed: set[str] | None = None
                rows = self.repository.history(rtype, rid, None, count, since)
            else:
                query = SearchQuery(rtype)
                decisions = self._decide_residents(draft, who, rtype, query,
                                                   include_deleted=True)
                allowed = {r for r, d in decisions.items() if r is not None and d.allows(rtype)}
                if rtype in DIRECTORY_TYPES:
                    directory = decisions.get(None)
                    allowed = None if directory and directory.allows(rtype) else set()
                rows = self.repository.history(rtype, None, allowed, count, since)
            entries = []
            for row in rows:
                version_decision = decisions.get(row.patient_id)
                if version_decision is None or not version_decision.allows(rtype):
                    continue  # a version filed under another resident is not disclosed here
                note_resident(draft, row)
                entries.append(self._history_entry(row, version_decision, who))
            entries = [e for e in entries if e is not None]
            bundle = {"resourceType": "Bundle", "type": "history", "total": len(entries),
                      "link": [{"relation": "self", "url": self.url(
                          f"{rtype}/{rid}/_history" if rid else f"{rtype}/_history", pairs)}],
                      "entry": entries}
            return Disclosure(200, orjson.dumps(bundle))

    # -- decide, shape ----------------------------------------------------------------------

    def _decide(self, draft: AuditDraft, who: Identity, action: str, types: Sequence[str],
                resident: str | None) -> Decision:
        decision = self.decider.decide(who, action, types, resident, draft.context or None)
        draft.decisions.append(decision)
        _flag_break_glass(draft, decision)
        return decision

    def _decide_residents(self, draft: AuditDraft, who: Identity, rtype: str,
                          query: SearchQuery,
                          include_deleted: bool = False) -> dict[str | None, Decision]:
        """Decide, before paging, for every resident the query could reach."""
        if rtype in DIRECTORY_TYPES:
            return {None: self._decide(draft, who, "search", [rtype], None)}
        if who.resident is not None:
            candidates: set[str | None] = {who.resident}
        elif include_deleted:
            candidates = self.repository.residents_with(rtype)
        else:
            candidates = self.repository.candidate_residents(query)
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
        if not any(d.allows(rtype) for d in decisions.values()):
            draft.decisions.extend(list(decisions.values())[:1])
        return decisions

    def _decision_for(self, draft: AuditDraft, who: Identity, row: StoredResource,
                      cache: dict[tuple[str | None, str], Decision]) -> Decision:
        key = (row.patient_id, row.resource_type)
        if key not in cache:
            cache[key] = self._decide(draft, who, "read", [row.resource_type],
                                      row.patient_id)
        return cache[key]

    def _shape(self, row: StoredResource, decision: Decision, who: Identity,
               elements: Sequence[str] | None = None,
               shapers: dict[str, Shaper] | None = None) -> dict[str, Any] | None:
        """Withhold, minimize, then apply the decision's de-identification profile.
        ``shapers`` carries one response's disclosures (and their k-anonymity verdicts)."""
        resource: dict[str, Any] = orjson.loads(row.body)
        if withheld(resource, decision.withhold_labels) or not decision.admits(resource):
            return None
        resource = _minimize(resource, decision, row.resource_type, elements)
        disclosure = self._disclosure(who, decision, {} if shapers is None else shapers)
        if disclosure.guarded and disclosure.verdict is None and row.resource_type == "Patient":
            # A Patient alone is its own population: the guard decides on it alone.
            disclosure.judge({str(row.patient_id): resource}, lambda p: p)
        return disclosure.shape(resource, row.patient_id)

    def _disclosure(self, who: Identity, decision: Decision,
                    shapers: dict[str, Shaper]) -> Shaper:
        if decision.profile not in shapers:
            profile = self.profiles.get(decision.profile)
            if profile is None:
                raise NotFound()  # a profile this exchange does not have: never disclose raw
            hash_key, siv_key = domain_keys(self.keys, domain_of(who.organization,
                                                                 who.purpose))
            shapers[decision.profile] = Shaper(profile, hash_key, siv_key,
                                                   self._patient_record,
                                                   self.clock.now().date())
        return shapers[decision.profile]

    def _patient_record(self, resident: str) -> dict[str, Any] | None:
        row = self.repository.read("Patient", resident)
        return None if row is None or row.deleted else orjson.loads(row.body)

    def _guarded_search(self, who: Identity, query: SearchQuery, allowed: set[str],
                        labels: list[dict[str, Any]], classes: dict[str, Any],
                        decisions: Mapping[str | None, Decision],
                        shapers: dict[str, Shaper]) -> tuple[int, list[StoredResource]]:
        """A Patient search under a k-anonymity guard: the population is every match,
        not the page, so the guard sees what the recipient could page through."""
        everything = replace(query, offset=0, count=GUARD_LIMIT + 1, summary_count=False)
        _, rows = self.repository.search(everything, allowed, labels, classes,
                                         neutral_order=True)
        if len(rows) > GUARD_LIMIT:
            raise InvalidSearch(f"A pseudonymized search may match at most {GUARD_LIMIT} "
                                "residents; narrow it.")
        suppressed = self._judge(who, rows, decisions, shapers, query.elements)
        kept = [row for row in rows if row.patient_id not in suppressed]
        if query.summary_count or query.count == 0:
            return len(kept), []
        return len(kept), kept[query.offset:query.offset + query.count]

    def _judge(self, who: Identity, rows: Sequence[StoredResource],
               decisions: Mapping[str | None, Decision], shapers: dict[str, Shaper],
               elements: Sequence[str] | None = None) -> set[str | None]:
        """Run the k-anonymity guard over the Patients among ``rows``, one population per
        profile; returns the residents it suppressed."""
        groups: dict[str, dict[str, dict[str, Any]]] = {}
        for row in rows:
            decision = decisions.get(row.patient_id)
            if row.resource_type != "Patient" or decision is None or row.patient_id is None:
                continue
            disclosure = self._disclosure(who, decision, shapers)
            if disclosure.guarded:
                resource = orjson.loads(row.body)
                if not withheld(resource, decision.withhold_labels):
                    groups.setdefault(decision.profile, {})[row.patient_id] = _minimize(
                        resource, decision, "Patient", elements)
        suppressed: set[str | None] = set()
        for name, patients in groups.items():
            verdict = shapers[name].judge(patients, lambda p: p)
            if verdict is not None:
                suppressed |= verdict.suppressed
        return suppressed

    # -- bundles ----------------------------------------------------------------------------

    def _entry(self, row: StoredResource, resource: dict[str, Any] | None,
               mode: str) -> dict[str, Any] | None:
        if resource is None:
            return None
        return {"fullUrl": f"{self.fhir_base}/{row.resource_type}/{resource['id']}",
                "resource": resource, "search": {"mode": mode}}

    def _history_entry(self, row: StoredResource, decision: Decision,
                       who: Identity) -> dict[str, Any] | None:
        shapers: dict[str, Shaper] = {}
        disclosure = self._disclosure(who, decision, shapers)
        identified = disclosure.profile.passes_through
        rid, shaped = row.resource_id, None
        if not row.deleted:
            shaped = self._shape(row, decision, who, None, shapers)
            if shaped is None:
                return None
            rid = str(shaped["id"])
        elif not identified:  # a deletion names the pseudonym, as the versions before did
            rid = disclosure.context(row.patient_id).mac(f"{row.resource_type}/{rid}")
        response: dict[str, Any] = {"status": "204" if row.deleted else "200",
                                    "etag": f'W/"{row.version_id}"'}
        if identified:  # the real time of a change is withheld with the real dates
            response["lastModified"] = to_instant(row.last_updated)
        entry: dict[str, Any] = {
            "fullUrl": f"{self.fhir_base}/{row.resource_type}/{rid}",
            "request": {"method": "DELETE" if row.deleted else
                        ("POST" if row.version_id == 1 else "PUT"),
                        "url": f"{row.resource_type}/{rid}"},
            "response": response}
        if shaped is not None:
            entry["resource"] = shaped
        return entry

    def _searchset(self, rtype: str, query: SearchQuery, pairs: Sequence[tuple[str, str]],
                   total: int, entries: list[Any]) -> dict[str, Any]:
        base = [(k, v) for k, v in pairs if k != "_offset"]
        links = [{"relation": "self", "url": self.url(rtype, pairs)}]
        if not query.summary_count and query.count > 0:
            if query.offset + query.count < total:
                links.append({"relation": "next", "url": self.url(
                    rtype, [*base, ("_offset", str(query.offset + query.count))])})
            if query.offset > 0:
                links.append({"relation": "previous", "url": self.url(
                    rtype, [*base, ("_offset", str(max(0, query.offset - query.count)))])})
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                                  "total": total, "link": links}
        if entries:
            bundle["entry"] = entries
        return bundle

    def url(self, path: str, pairs: Sequence[tuple[str, str]]) -> str:
        query = urlencode(list(pairs))
        return f"{self.fhir_base}/{path}" + (f"?{query}" if query else "")


def _flag_break_glass(draft: AuditDraft, decision: Decision) -> None:
    if "break_glass" in decision.reasons and decision.allow:
        draft.details["break_glass"] = draft.context.get("break_glass_reason", "")


def _merge_decisions(decisions: list[Decision]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for d in decisions:
        view = d.audit_view()
        if view not in seen:
            seen.append(view)
    return seen


def _union_labels(decisions: Iterator[Decision] | Any) -> list[dict[str, Any]]:
    labels: list[dict[str, Any]] = []
    for d in decisions:
        for item in d.withhold_labels:
            if item not in labels:
                labels.append(item)
    return labels


def _history_params(pairs: Sequence[tuple[str, str]], default: int,
                    maximum: int) -> tuple[int, Any]:
    count, since = default, None
    for key, value in pairs:
        if key == "_count" and DIGITS.match(value):
            count = min(int(value), maximum)
        elif key == "_since":
            try:
                since = parse_range(value)[0]
            except ValueError:
                raise InvalidSearch("Parameter _since has a malformed instant.") from None
        else:
            raise InvalidSearch(f"Unknown history parameter {key}.")
    return count, since


def _minimize(resource: dict[str, Any], decision: Decision, rtype: str,
              elements: Sequence[str] | None) -> dict[str, Any]:
    resource = keep_fields(resource, decision.types.get(rtype, []))
    return keep_fields(resource, elements) if elements else resource

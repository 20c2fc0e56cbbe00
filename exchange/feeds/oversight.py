"""The audit trail's views: FHIR AuditEvent (BALP), the compliance API, and residents'
own access history. Each view is itself decided by policy and recorded in the ledger."""

import base64
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag

from consent.model import check_consent
from exchange.audit.balp import OUTCOME_CODES, render
from exchange.audit.ledger import AuditLedger
from exchange.audit.merkle import verify_inclusion
from exchange.decisions.replay import Replayer, preview
from exchange.errors import Forbidden, InvalidRequest, InvalidSearch, NotFound
from exchange.fhir.dates import parse_range
from exchange.fhir.search import DIGITS, parse_search
from exchange.fhir.validation import validate_resource
from exchange.gate import Gate
from exchange.identity.model import Identity
from exchange.identity.registry import ClientRegistry
from exchange.privacy.disclosure import domain_keys, domain_of
from exchange.privacy.methods import reveal
from exchange.road import AuditDraft, Disclosure, RequestContext
from exchange.web.labels import ACTIONS, OUTCOMES, PURPOSES, TYPES, zh_en

AUDIT_TYPE = "AuditEvent"
CHINA = timezone(timedelta(hours=8))
_AUDIT_PARAMS = frozenset({"patient", "agent", "purpose", "outcome", "date", "_count",
                           "_offset"})


class Oversight:
    def __init__(self, gate: Gate, ledger: AuditLedger, registry: ClientRegistry,
                 fhir_base: str, replayer: Replayer,
                 reasons: dict[str, dict[str, str]] | None = None) -> None:
        self.gate = gate
        self.reasons = reasons or {}
        self.ledger = ledger
        self.registry = registry
        self.fhir_base = fhir_base
        self.replayer = replayer

    def _authorize(self, draft: AuditDraft, who: Identity) -> str | None:
        """Who may read which part of the trail: oversight all of it, a resident their own.
        Returns the resident the view is confined to (None: the whole trail)."""
        resident = who.resident
        decision = self.gate.decider.decide(who, "search", [AUDIT_TYPE], resident)
        draft.decisions.append(decision)
        if not decision.allows(AUDIT_TYPE):
            draft.outcome = "denied"
            raise Forbidden("The audit trail is open to compliance officers only.")
        return resident

    # -- FHIR AuditEvent --------------------------------------------------------------------

    def audit_events(self, ctx: RequestContext, who: Identity,
                     pairs: Sequence[tuple[str, str]], ndjson: bool = False) -> Disclosure:
        with self.gate.recording(ctx, who, "audit-read", {"type": AUDIT_TYPE,
                                                          "query": ctx.query}) as draft:
            confined = self._authorize(draft, who)
            filters, count, offset = _audit_filters(pairs)
            if confined is not None:
                if filters.get("resident") not in (None, confined):
                    raise Forbidden("A resident reads only their own access history.")
                filters["resident"] = confined
            if ndjson:
                count, offset = 100_000, 0
            total, page = self.ledger.query(offset=offset, limit=count, **filters)
            events = [render(seq, entry, self.fhir_base) for seq, entry in page]
            draft.details["total"] = total
            if ndjson:
                body = b"".join(orjson.dumps(e) + b"\n" for e in events)
                return Disclosure(200, body, {"Content-Type": "application/fhir+ndjson"})
            links = [{"relation": "self", "url": self.gate.url(AUDIT_TYPE, pairs)}]
            base = [(k, v) for k, v in pairs if k != "_offset"]
            if offset + count < total:
                links.append({"relation": "next", "url": self.gate.url(
                    AUDIT_TYPE, [*base, ("_offset", str(offset + count))])})
            bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                                      "total": total, "link": links}
            if events:
                bundle["entry"] = [{"fullUrl": f"{self.fhir_base}/AuditEvent/{e['id']}",
                                    "resource": e, "search": {"mode": "match"}}
                                   for e in events]
            return Disclosure(200, orjson.dumps(bundle))

    # -- compliance API -----------------------------------------------------------------------

    def summary(self, ctx: RequestContext, who: Identity, days: int) -> Disclosure:
        with self.gate.recording(ctx, who, "audit-read", {"view": "summary"}) as draft:
            self._require_oversight(draft, who)
            since = self.gate.clock.now() - timedelta(days=days)
            per_org_day: Counter[tuple[str, str]] = Counter()
            per_purpose: Counter[str] = Counter()
            denials: Counter[str] = Counter()
            for day, org, purpose, outcome, action, n in self.ledger.counts(since):
                if action in ("token", "authenticate", "administration", "audit-read"):
                    continue
                if outcome == "success":
                    per_org_day[(org or "-", str(day))] += n
                    per_purpose[purpose or "-"] += n
                elif outcome in ("denied", "refused", "not-found"):
                    denials[org or "-"] += n
            body = {
                "since": since.isoformat(),
                "disclosures_per_organization_per_day": [
                    {"organization": o, "day": d, "count": n}
                    for (o, d), n in sorted(per_org_day.items())],
                "disclosures_per_purpose": dict(sorted(per_purpose.items())),
                "denials_per_organization": dict(sorted(denials.items())),
                "denials": sum(denials.values()),
            }
            return Disclosure(200, orjson.dumps(body), {"Content-Type": "application/json"})

    def anomalies(self, ctx: RequestContext, who: Identity, days: int) -> Disclosure:
        with self.gate.recording(ctx, who, "audit-read", {"view": "anomalies"}) as draft:
            self._require_oversight(draft, who)
            since = self.gate.clock.now() - timedelta(days=days)
            body = {"since": since.isoformat(),
                    "flags": find_anomalies(self.ledger.activity(since))}
            return Disclosure(200, orjson.dumps(body), {"Content-Type": "application/json"})

    def integrity(self, ctx: RequestContext, who: Identity) -> Disclosure:
        with self.gate.recording(ctx, who, "audit-read", {"view": "integrity"}) as draft:
            self._require_oversight(draft, who)
            latest = self.ledger.checkpoint()
            exported = self.ledger.last_exported()
            body = {
                "size": latest.checkpoint.size,
                "latest_checkpoint": {"size": latest.checkpoint.size,
                                      "root": latest.checkpoint.root.hex(),
                                      "signed_at": latest.created_at.isoformat(),
                                      "note": latest.note},
                "last_verification": self.ledger.last_verification(),
                "last_exported_witness": None if exported is None else {
                    "size": exported.checkpoint.size,
                    "exported_at": exported.created_at.isoformat(),
                    "consistent": self.ledger.consistent_with(exported.checkpoint)},
            }
            return Disclosure(200, orjson.dumps(body), {"Content-Type": "application/json"})

    def verify_now(self, ctx: RequestContext, who: Identity) -> Disclosure:
        with self.gate.recording(ctx, who, "audit-read", {"view": "verify"}) as draft:
            self._require_oversight(draft, who)
            report = self.ledger.verify()
            self.ledger.record_verification(report)
            body = {"ok": report.ok, "checked": report.checked,
                    "first_bad": report.first_bad, "problem": report.problem}
            return Disclosure(200, orjson.dumps(body), {"Content-Type": "application/json"})

    def reidentify(self, ctx: RequestContext, who: Identity, request: Any) -> Disclosure:
        """The resident behind a re-identification token of one recipient's pseudonymized
        disclosure: an exchange-side act, decided by policy and recorded."""
        if not isinstance(request, dict) or not all(
                isinstance(request.get(k), str) for k in ("organization", "purpose", "token")):
            raise InvalidRequest("Give organization, purpose and token.")
        domain = domain_of(request["organization"], request["purpose"])
        with self.gate.recording(ctx, who, "reidentify", {"type": "Patient",
                                                          "domain": domain}) as draft:
            decision = self.gate.decider.decide(who, "reidentify", ["Patient"], None)
            draft.decisions.append(decision)
            if not decision.allows("Patient"):
                draft.outcome = "denied"
                raise Forbidden("Re-identification is open to compliance officers only.")
            _, siv_key = domain_keys(self.gate.keys, domain)
            try:
                value = reveal(siv_key, "Patient.identifier.value", request["token"])
            except (ValueError, InvalidTag):
                raise InvalidRequest("The token was not issued in that domain.") from None
            query = parse_search("Patient", [("identifier", value)])
            _, rows = self.gate.repository.search(query, None)
            if len(rows) != 1:
                raise NotFound("No resident holds that identifier now.")
            resident = str(rows[0].patient_id)
            draft.residents.add(resident)
            body = {"resident": resident, "domain": domain}
            return Disclosure(200, orjson.dumps(body), {"Content-Type": "application/json"})

    def replay(self, ctx: RequestContext, who: Identity, seq: int) -> Disclosure:
        """Replay the decisions of a past entry: same consent versions, same policy
        revision, same input; the answer must be the same."""
        with self.gate.recording(ctx, who, "audit-read", {"view": "replay",
                                                          "seq": seq}) as draft:
            self._require_oversight(draft, who)
            entry = self.ledger.read(seq)
            if entry is None:
                raise NotFound("No such audit entry.")
            results = self.replayer.replay(entry)
            body = {"seq": seq, "same": all(r["same"] for r in results), "decisions": results}
            return Disclosure(200, orjson.dumps(body), {"Content-Type": "application/json"})

    def preview(self, ctx: RequestContext, who: Identity, draft_consent: Any) -> Disclosure:
        """What-if: who could see what if this consent were granted."""
        with self.gate.recording(ctx, who, "preview", {"type": "Consent"}) as draft:
            resident = who.resident
            consent = validate_resource(draft_consent, expected_type="Consent")
            check_consent(consent)
            patient = consent["patient"]["reference"].split("/", 1)[1]
            decision = self.gate.decider.decide(who, "create", ["Consent"], patient)
            draft.decisions.append(decision)
            if resident is None or patient != resident or not decision.allows("Consent"):
                draft.outcome = "denied"
                raise Forbidden("Only the resident, or their proxy, may preview their consent.")
            draft.residents.add(patient)
            changes = preview(self.gate.decider, self.registry, patient, consent,
                              int(self.gate.clock.now().timestamp()))
            names = []
            for change in changes:
                added = sorted(set(change["with_draft"]["types"]) - set(change["now"]["types"]))
                purpose_zh, purpose_en = zh_en(PURPOSES, change["purpose"])
                types_zh = "、".join(zh_en(TYPES, t)[0] for t in added)
                types_en = ", ".join(zh_en(TYPES, t)[1] for t in added)
                names.append({**change, "text": {
                    "zh": f"{change['name']} 将可以为「{purpose_zh}」查看您的{types_zh}"
                          + ("（不含姓名）" if change["with_draft"]["form"] == "pseudonymized"
                             else "") + "。",
                    "en": f"{change['name']} could see your {types_en} for {purpose_en}"
                          + (" (without your name)"
                             if change["with_draft"]["form"] == "pseudonymized" else "")
                          + "."}})
            return Disclosure(200, orjson.dumps({"resident": patient, "changes": names}),
                              {"Content-Type": "application/json"})

    def _require_oversight(self, draft: AuditDraft, who: Identity) -> None:
        if who.kind != "client" or self._authorize(draft, who) is not None:
            draft.outcome = "denied"
            raise Forbidden("The compliance views are open to compliance officers only.")

    # -- residents' access history ------------------------------------------------------------

    def access_history(self, ctx: RequestContext, who: Identity) -> Disclosure:
        with self.gate.recording(ctx, who, "audit-read", {"view": "access-history"}) as draft:
            resident = self._authorize(draft, who)
            if resident is None:
                raise Forbidden("The access history is each resident's own.")
            draft.residents.add(resident)
            signed = self.ledger.checkpoint()
            size = signed.checkpoint.size
            _total, page = self.ledger.query(resident=resident, limit=500)
            names = {c.organization: c.name for c in self.registry.list()}
            items = []
            for seq, entry in page:
                actor = entry.get("who") or {}
                if actor.get("kind") != "client" or seq > size:
                    continue  # the resident's own acts, and entries after the checkpoint
                items.append(self._history_item(seq, entry, names, size, signed.note))
            body = {"resident": resident, "items": items,
                    "checkpoint": signed.note,
                    "how_to_check": {
                        "zh": "每条记录附有默克尔包含证明：对密文做 SHA-256(0x00‖密文) "
                              "得到叶子哈希，沿 path 计算到 root，"
                              "再用交换平台公布的 Ed25519 公钥验证 checkpoint 签名。",
                        "en": "Each item carries a Merkle inclusion proof: SHA-256(0x00 || "
                              "ciphertext) is the leaf; follow the path to the root; check the "
                              "checkpoint's Ed25519 signature with the exchange's published key."}}
            return Disclosure(200, orjson.dumps(body), {"Content-Type": "application/json"})

    def _history_item(self, seq: int, entry: dict[str, Any], names: dict[str, str],
                      size: int, note: str) -> dict[str, Any]:
        actor = entry.get("who") or {}
        organization = actor.get("organization")
        name = names.get(organization or "", organization or "?")
        purpose = actor.get("purpose")
        purpose_zh, purpose_en = zh_en(PURPOSES, purpose)
        verb_zh, verb_en = zh_en(ACTIONS, entry.get("action"))
        rtype = (entry.get("what") or {}).get("type")
        type_zh, type_en = zh_en(TYPES, rtype)
        outcome_zh, outcome_en = zh_en(OUTCOMES, entry.get("outcome"))
        consents = sorted({c for d in entry.get("decisions") or []
                           for c in d.get("consents", [])})
        leaf = self.ledger.leaf(seq)
        proof = self.ledger.inclusion_proof(seq, size)
        assert leaf is not None
        root = self.ledger.root(size)[1]
        verify_inclusion(seq - 1, size, leaf, proof, root)
        emergency = purpose == "ETREAT"
        return {
            "seq": seq,
            "time": entry.get("time"),
            "who": name,
            "organization": organization,
            "purpose": purpose,
            "what": rtype,
            "outcome": entry.get("outcome"),
            "consents": consents,
            "why": [{"code": code, **self.reasons.get(code, {"en": code, "zh": code})}
                    for code in sorted({r for d in entry.get("decisions") or []
                                        for r in d.get("reasons", [])})],
            "emergency_access": emergency,
            **({"emergency_reason": (entry.get("details") or {}).get("break_glass")}
               if (entry.get("details") or {}).get("break_glass") else {}),
            "released_to_hub": actor.get("role") == "hub",
            "text": {
                "zh": f"{name} 以「{purpose_zh}」为目的{verb_zh}您的{type_zh}（{outcome_zh}）。",
                "en": f"{name} {verb_en} your {type_en} for {purpose_en} ({outcome_en}).",
            },
            "proof": {"leaf_index": seq - 1, "tree_size": size, "root": root.hex(),
                      "leaf_hash": leaf.hex(), "path": [p.hex() for p in proof],
                      "ciphertext": base64.b64encode(self.ledger.ciphertext(seq)).decode(),
                      "checkpoint": note},
        }



def _audit_filters(pairs: Sequence[tuple[str, str]]) -> tuple[dict[str, Any], int, int]:
    filters: dict[str, Any] = {}
    count, offset = 50, 0
    for key, value in pairs:
        if key not in _AUDIT_PARAMS:
            raise InvalidSearch(f"Unknown search parameter {key} for AuditEvent.")
        if key == "patient":
            filters["resident"] = value.removeprefix("Patient/")
        elif key == "agent":
            if not value.startswith("Organization/"):
                raise InvalidSearch("Parameter agent takes Organization/<id>.")
            filters["organization"] = value
        elif key == "purpose":
            filters["purpose"] = value.rpartition("|")[2]
        elif key == "outcome":
            wanted = set(value.split(","))
            if not wanted <= {"0", "4", "8", "12"}:
                raise InvalidSearch("Parameter outcome takes 0, 4, 8 or 12.")
            filters["outcomes"] = [o for o, c in OUTCOME_CODES.items() if c in wanted]
        elif key == "date":
            prefix, raw = (value[:2], value[2:]) if value[:2] in ("ge", "gt", "le", "lt", "eq") \
                else ("eq", value)
            try:
                low, high = parse_range(raw)
            except ValueError:
                raise InvalidSearch("Parameter date is malformed.") from None
            if prefix in ("ge", "eq"):
                filters["since"] = low
            if prefix == "gt":
                filters["since"] = high
            if prefix in ("le", "eq"):
                filters["until"] = high
            if prefix == "lt":
                filters["until"] = low
        elif key in ("_count", "_offset"):
            if not DIGITS.match(value):
                raise InvalidSearch(f"Parameter {key} must be a non-negative integer.")
            if key == "_count":
                count = min(int(value), 500)
            else:
                offset = int(value)
    return filters, count, offset


def find_anomalies(activity: list[tuple[int, datetime, str | None, str | None,
                                        str | None]]) -> list[dict[str, Any]]:
    """Flags for officers: emergency access, volume far above usual, night-time access,
    bursts of denials. Inputs are (seq, time, organization, purpose, outcome)."""
    flags: list[dict[str, Any]] = []
    emergency = [seq for seq, _t, _o, purpose, outcome in activity
                 if purpose == "ETREAT" and outcome == "success"]
    if emergency:
        flags.append({"kind": "break_glass", "count": len(emergency), "entries": emergency[:100]})
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    night: Counter[str] = Counter()
    denials: dict[str, list[datetime]] = defaultdict(list)
    for _seq, moment, org, _purpose, outcome in activity:
        if org is None:
            continue
        local = moment.astimezone(CHINA)
        if outcome == "success":
            per_day[org][local.date().isoformat()] += 1
            if local.hour >= 22 or local.hour < 6:
                night[org] += 1
        elif outcome in ("denied", "refused"):
            denials[org].append(moment)
    for org, days in per_day.items():
        for day, n in days.items():
            others = [m for d, m in days.items() if d != day] or [0]
            usual = statistics.median(others)
            if n >= 20 and n > 3 * usual:
                flags.append({"kind": "volume", "organization": org, "day": day,
                              "count": n, "usual": usual})
    for org, n in night.items():
        flags.append({"kind": "unusual_hours", "organization": org, "count": n,
                      "hours": "22:00-06:00 China Standard Time"})
    window = timedelta(minutes=5)
    for org, times in denials.items():
        times.sort()
        start = 0
        for end, moment in enumerate(times):
            while moment - times[start] > window:
                start += 1
            if end - start + 1 >= 10:
                flags.append({"kind": "denial_burst", "organization": org,
                              "from": times[start].astimezone(UTC).isoformat(),
                              "count": end - start + 1})
                break
    return flags

"""The compliance views of the trail, for oversight clients: a summary of disclosures,
anomalies, the ledger's integrity and a verification run, and the replay of a past
entry's decisions. Each view is decided by the policies and recorded."""

from collections import Counter
from datetime import timedelta

import orjson

from exchange.audit.anomalies import find_anomalies
from exchange.audit.ledger import AuditLedger
from exchange.decisions.replay import Replayer
from exchange.errors import NotFound
from exchange.gate.context import Disclosure, RequestContext
from exchange.gate.oversight import AUDIT_READ, require_oversight
from exchange.gate.road import Road
from exchange.identity.model import Identity


class Compliance:
    def __init__(self, road: Road, ledger: AuditLedger, replayer: Replayer) -> None:
        self._road = road
        self._ledger = ledger
        self._replayer = replayer

    def summary(self, ctx: RequestContext, who: Identity, days: int) -> Disclosure:
        with self._road.recorder.recording(ctx, who, AUDIT_READ, {"view": "summary"}) as draft:
            require_oversight(self._road, draft, who)
            since = self._road.clock.now() - timedelta(days=days)
            per_org_day: Counter[tuple[str, str]] = Counter()
            per_purpose: Counter[str] = Counter()
            denials: Counter[str] = Counter()
            for day, org, purpose, outcome, action, n in self._ledger.counts(since):
                if action in ("token", "authenticate", "administration", AUDIT_READ):
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
        with self._road.recorder.recording(ctx, who, AUDIT_READ, {"view": "anomalies"}) as draft:
            require_oversight(self._road, draft, who)
            since = self._road.clock.now() - timedelta(days=days)
            body = {"since": since.isoformat(),
                    "flags": find_anomalies(self._ledger.activity(since))}
            return Disclosure(200, orjson.dumps(body), {"Content-Type": "application/json"})

    def integrity(self, ctx: RequestContext, who: Identity) -> Disclosure:
        with self._road.recorder.recording(ctx, who, AUDIT_READ, {"view": "integrity"}) as draft:
            require_oversight(self._road, draft, who)
            latest = self._ledger.checkpoint()
            exported = self._ledger.last_exported()
            body = {
                "size": latest.checkpoint.size,
                "latest_checkpoint": {"size": latest.checkpoint.size,
                                      "root": latest.checkpoint.root.hex(),
                                      "signed_at": latest.created_at.isoformat(),
                                      "note": latest.note},
                "last_verification": self._ledger.last_verification(),
                "last_exported_witness": None if exported is None else {
                    "size": exported.checkpoint.size,
                    "exported_at": exported.created_at.isoformat(),
                    "consistent": self._ledger.consistent_with(exported.checkpoint)},
            }
            return Disclosure(200, orjson.dumps(body), {"Content-Type": "application/json"})

    def verify_now(self, ctx: RequestContext, who: Identity) -> Disclosure:
        with self._road.recorder.recording(ctx, who, AUDIT_READ, {"view": "verify"}) as draft:
            require_oversight(self._road, draft, who)
            report = self._ledger.verify()
            self._ledger.record_verification(report)
            body = {"ok": report.ok, "checked": report.checked,
                    "first_bad": report.first_bad, "problem": report.problem}
            return Disclosure(200, orjson.dumps(body), {"Content-Type": "application/json"})

    def replay(self, ctx: RequestContext, who: Identity, seq: int) -> Disclosure:
        """Replay the decisions of a past entry: same consent versions, same policy
        revision, same input; the answer must be the same."""
        with self._road.recorder.recording(ctx, who, AUDIT_READ, {
                "view": "replay",
                # The ledger's JSON holds 64-bit integers: a larger number is kept as text.
                "seq": seq if -2 ** 63 <= seq < 2 ** 63 else str(seq)[:40]}) as draft:
            require_oversight(self._road, draft, who)
            if not 0 < seq < 2 ** 63:  # beyond any sequence the database can hold
                raise NotFound("No such audit entry.")
            entry = self._ledger.read(seq)
            if entry is None:
                raise NotFound("No such audit entry.")
            results = self._replayer.replay(entry)
            body = {"seq": seq, "same": all(r["same"] for r in results), "decisions": results}
            return Disclosure(200, orjson.dumps(body), {"Content-Type": "application/json"})

"""Reading the audit trail: the FHIR ``AuditEvent`` view (BALP) and each resident's own
access history with its Merkle proofs. Who may read which part is the policies' answer;
every reading is itself recorded (BALP "Audit Log Used")."""

import base64
from collections.abc import Sequence
from typing import Any

import orjson

from exchange.audit.balp import render
from exchange.audit.ledger import AuditLedger
from exchange.audit.merkle import verify_inclusion
from exchange.audit.search import audit_filters
from exchange.errors import Forbidden
from exchange.gate.context import Disclosure, RequestContext
from exchange.gate.oversight import AUDIT_READ, AUDIT_TYPE, authorize_trail
from exchange.gate.road import Road
from exchange.identity.model import Identity
from exchange.identity.registry import ClientRegistry
from exchange.wording import ACTIONS, OUTCOMES, PURPOSES, TYPES, zh_en


class Trail:
    def __init__(self, road: Road, ledger: AuditLedger, registry: ClientRegistry,
                 reasons: dict[str, dict[str, str]] | None = None) -> None:
        self._road = road
        self._ledger = ledger
        self._registry = registry
        self._reasons = reasons or {}

    def audit_events(self, ctx: RequestContext, who: Identity,
                     pairs: Sequence[tuple[str, str]], ndjson: bool = False) -> Disclosure:
        road = self._road
        with road.recorder.recording(ctx, who, AUDIT_READ, {"type": AUDIT_TYPE,
                                                            "query": ctx.query}) as draft:
            confined = authorize_trail(road, draft, who)
            filters, count, offset = audit_filters(pairs, road.zone)
            if confined is not None:
                if filters.get("resident") not in (None, confined):
                    raise Forbidden("A resident reads only their own access history.")
                filters["resident"] = confined
            if ndjson:
                count, offset = 100_000, 0
            total, page = self._ledger.query(offset=offset, limit=count, **filters)
            events = [render(seq, entry, road.fhir_base) for seq, entry in page]
            draft.details["total"] = total
            if ndjson:
                body = b"".join(orjson.dumps(e) + b"\n" for e in events)
                return Disclosure(200, body, {"Content-Type": "application/fhir+ndjson"})
            links = [{"relation": "self", "url": road.url(AUDIT_TYPE, pairs)}]
            base = [(k, v) for k, v in pairs if k != "_offset"]
            if offset + count < total:
                links.append({"relation": "next", "url": road.url(
                    AUDIT_TYPE, [*base, ("_offset", str(offset + count))])})
            bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                                      "total": total, "link": links}
            if events:
                bundle["entry"] = [{"fullUrl": f"{road.fhir_base}/AuditEvent/{e['id']}",
                                    "resource": e, "search": {"mode": "match"}}
                                   for e in events]
            return Disclosure(200, orjson.dumps(bundle))

    def access_history(self, ctx: RequestContext, who: Identity) -> Disclosure:
        road = self._road
        with road.recorder.recording(ctx, who, AUDIT_READ,
                                     {"view": "access-history"}) as draft:
            resident = authorize_trail(road, draft, who)
            if resident is None:
                raise Forbidden("The access history is each resident's own.")
            draft.residents.add(resident)
            signed = self._ledger.checkpoint()
            size = signed.checkpoint.size
            _total, page = self._ledger.query(resident=resident, limit=500)
            names = {c.organization: c.name for c in self._registry.list()}
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
        leaf = self._ledger.leaf(seq)
        proof = self._ledger.inclusion_proof(seq, size)
        assert leaf is not None
        root = self._ledger.root(size)[1]
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
            "why": [{"code": code, **self._reasons.get(code, {"en": code, "zh": code})}
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
                      "ciphertext": base64.b64encode(self._ledger.ciphertext(seq)).decode(),
                      "checkpoint": note},
        }

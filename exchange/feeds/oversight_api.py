"""Routes of the audit trail's views: AuditEvent, the compliance API, access history."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from exchange.feeds.deps import ContextDep, GateDep, IdentityDep, PublicationDep
from exchange.fhir.validation import parse_json
from exchange.gate import Disclosure

router = APIRouter()
Days = Annotated[int, Query(ge=1, le=366)]


def _respond(disclosure: Disclosure) -> Response:
    headers = dict(disclosure.headers)
    media = headers.pop("Content-Type", "application/fhir+json")
    return Response(disclosure.body, status_code=disclosure.status, media_type=media,
                    headers=headers)


@router.get("/fhir/AuditEvent")
def audit_events(request: Request, gate: GateDep, ctx: ContextDep,
                 who: IdentityDep) -> Response:
    pairs = list(request.query_params.multi_items())
    return _respond(gate.audit_events(ctx, who, pairs))


@router.get("/compliance/audit-events.ndjson")
def audit_events_ndjson(request: Request, gate: GateDep, ctx: ContextDep,
                        who: IdentityDep) -> Response:
    pairs = list(request.query_params.multi_items())
    return _respond(gate.audit_events(ctx, who, pairs, ndjson=True))


@router.get("/compliance/summary")
def summary(gate: GateDep, ctx: ContextDep, who: IdentityDep,
            days: Days = 30) -> Response:
    return _respond(gate.summary(ctx, who, days))


@router.get("/compliance/anomalies")
def anomalies(gate: GateDep, ctx: ContextDep, who: IdentityDep,
              days: Days = 30) -> Response:
    return _respond(gate.anomalies(ctx, who, days))


@router.get("/compliance/integrity")
def integrity(gate: GateDep, ctx: ContextDep, who: IdentityDep) -> Response:
    return _respond(gate.integrity(ctx, who))


@router.post("/compliance/verify")
def verify(gate: GateDep, ctx: ContextDep, who: IdentityDep) -> Response:
    return _respond(gate.verify_now(ctx, who))


@router.post("/compliance/reidentify")
async def reidentify(request: Request, gate: GateDep, ctx: ContextDep,
                     who: IdentityDep) -> Response:
    try:
        body = await request.json()
    except ValueError:
        body = None
    return _respond(await run_in_threadpool(gate.reidentify, ctx, who, body))


@router.get("/compliance/replay/{seq}")
def replay(seq: int, gate: GateDep, ctx: ContextDep, who: IdentityDep) -> Response:
    return _respond(gate.replay(ctx, who, seq))


@router.post("/resident/consents/$preview")
async def preview(request: Request, gate: GateDep, ctx: ContextDep,
                  who: IdentityDep) -> Response:
    draft = parse_json(await request.body())
    return _respond(await run_in_threadpool(gate.preview, ctx, who, draft))


@router.get("/resident/access-history")
def access_history(gate: GateDep, ctx: ContextDep, who: IdentityDep) -> Response:
    return _respond(gate.access_history(ctx, who))


@router.get("/.well-known/audit-log-key.pem")
@router.get("/.well-known/exchange-signing-key.pem")
def audit_key(published: PublicationDep) -> Response:
    """The Ed25519 key that signs audit checkpoints and consent receipts, for anyone
    checking a proof or a receipt offline."""
    return Response(published.signing_key_pem, media_type="application/x-pem-file")

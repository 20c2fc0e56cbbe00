"""The clinic FHIR REST API at ``/fhir``. Each route hands one call to the gate."""

from datetime import UTC, datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from exchange.errors import UnsupportedMedia
from exchange.feeds.deps import ContextDep, GateDep, IdentityDep, PublicationDep
from exchange.fhir.capability import capability_statement
from exchange.fhir.ids import parse_version
from exchange.fhir.release import ACCEPTED_MIMES, FHIR_MIME
from exchange.fhir.validation import parse_json
from exchange.gate import Disclosure

router = APIRouter(prefix="/fhir")


def _respond(disclosure: Disclosure) -> Response:
    return Response(disclosure.body, status_code=disclosure.status,
                    media_type=FHIR_MIME if disclosure.body else None,
                    headers=disclosure.headers)


async def _body(request: Request) -> object:
    mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if mime not in ACCEPTED_MIMES:
        raise UnsupportedMedia("Send application/fhir+json.")
    return parse_json(await request.body())


@router.get("/metadata")
def metadata(published: PublicationDep) -> Response:
    statement = capability_statement(published.fhir_base, published.token_url,
                                     published.software_version,
                                     datetime.now(UTC).date().isoformat())
    return Response(orjson.dumps(statement), media_type=FHIR_MIME)


@router.post("")
async def post_bundle(request: Request, gate: GateDep, ctx: ContextDep,
                      who: IdentityDep) -> Response:
    body = await _body(request)
    return _respond(await run_in_threadpool(gate.bundle, ctx, who, body))


@router.get("/Patient/{rid}/$everything")
def everything(rid: str, gate: GateDep, ctx: ContextDep,
               who: IdentityDep) -> Response:
    return _respond(gate.everything(ctx, who, rid))


@router.get("/Consent/{rid}/$receipt")
def consent_receipt(rid: str, gate: GateDep, ctx: ContextDep,
                    who: IdentityDep) -> Response:
    disclosure = gate.consent_receipt(ctx, who, rid)
    return Response(disclosure.body, media_type="application/json")


@router.get("/Consent/{rid}/_history/{vid}/$receipt")
def consent_version_receipt(rid: str, vid: str, gate: GateDep, ctx: ContextDep,
                            who: IdentityDep) -> Response:
    disclosure = gate.consent_receipt(ctx, who, rid, parse_version(vid))
    return Response(disclosure.body, media_type="application/json")


@router.get("/{rtype}/_history")
def type_history(rtype: str, request: Request, gate: GateDep, ctx: ContextDep,
                 who: IdentityDep) -> Response:
    pairs = list(request.query_params.multi_items())
    return _respond(gate.history(ctx, who, rtype, None, pairs))


@router.get("/{rtype}/{rid}/_history")
def instance_history(rtype: str, rid: str, request: Request, gate: GateDep,
                     ctx: ContextDep, who: IdentityDep) -> Response:
    pairs = list(request.query_params.multi_items())
    return _respond(gate.history(ctx, who, rtype, rid, pairs))


@router.get("/{rtype}/{rid}/_history/{vid}")
def vread(rtype: str, rid: str, vid: str, gate: GateDep, ctx: ContextDep,
          who: IdentityDep) -> Response:
    return _respond(gate.read(ctx, who, rtype, rid, parse_version(vid)))


@router.get("/{rtype}")
def search(rtype: str, request: Request, gate: GateDep, ctx: ContextDep,
           who: IdentityDep) -> Response:
    pairs = list(request.query_params.multi_items())
    return _respond(gate.search(ctx, who, rtype, pairs))


@router.post("/{rtype}/_search")
async def search_post(rtype: str, request: Request, gate: GateDep, ctx: ContextDep,
                      who: IdentityDep) -> Response:
    form = await request.form()
    pairs = [*request.query_params.multi_items(),
             *((k, str(v)) for k, v in form.multi_items())]
    return _respond(await run_in_threadpool(gate.search, ctx, who, rtype, pairs))


@router.get("/{rtype}/{rid}")
def read(rtype: str, rid: str, gate: GateDep, ctx: ContextDep,
         who: IdentityDep) -> Response:
    return _respond(gate.read(ctx, who, rtype, rid))


@router.post("/{rtype}")
async def create(rtype: str, request: Request, gate: GateDep, ctx: ContextDep,
                 who: IdentityDep) -> Response:
    body = await _body(request)
    return _respond(await run_in_threadpool(gate.create, ctx, who, rtype, body))


@router.put("/{rtype}/{rid}")
async def update(rtype: str, rid: str, request: Request, gate: GateDep,
                 ctx: ContextDep, who: IdentityDep,
                 if_match: Annotated[str | None, Header()] = None) -> Response:
    body = await _body(request)
    return _respond(await run_in_threadpool(gate.update, ctx, who, rtype, rid, body,
                                            if_match))


@router.delete("/{rtype}/{rid}")
def delete(rtype: str, rid: str, gate: GateDep, ctx: ContextDep,
           who: IdentityDep) -> Response:
    return _respond(gate.delete(ctx, who, rtype, rid))

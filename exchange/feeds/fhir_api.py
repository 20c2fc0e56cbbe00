"""The clinic FHIR REST API at ``/fhir``. Each route hands one call to the gate."""

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
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
from exchange.gate import Disclosure, ReadConditions, as_preferred, handling_lenient

router = APIRouter(prefix="/fhir")
JSON_PATCH = "application/json-patch+json"

Prefer = Annotated[str | None, Header()]
IfMatch = Annotated[str | None, Header()]


def _respond(disclosure: Disclosure, head: bool = False) -> Response:
    return Response(b"" if head else disclosure.body, status_code=disclosure.status,
                    media_type=FHIR_MIME if disclosure.body else None,
                    headers=disclosure.headers)


def _mime(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _body(request: Request) -> object:
    if _mime(request) not in ACCEPTED_MIMES:
        raise UnsupportedMedia("Send application/fhir+json.")
    return parse_json(await request.body())


def _conditions(request: Request) -> ReadConditions | None:
    """A conditional read's headers; an If-Modified-Since that is no HTTP date is
    ignored, as HTTP says."""
    if_none_match = request.headers.get("if-none-match")
    since = None
    if raw := request.headers.get("if-modified-since"):
        try:
            since = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            since = None
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
    if if_none_match is None and since is None:
        return None
    return ReadConditions(if_none_match, since)


@router.get("/metadata")
def metadata(published: PublicationDep) -> Response:
    statement = capability_statement(published.fhir_base, published.token_url,
                                     published.software_version,
                                     datetime.now(UTC).date().isoformat())
    return Response(orjson.dumps(statement), media_type=FHIR_MIME)


@router.get("")
def system_search(request: Request, gate: GateDep, ctx: ContextDep, who: IdentityDep,
                  prefer: Prefer = None) -> Response:
    pairs = list(request.query_params.multi_items())
    return _respond(gate.system_search(ctx, who, pairs, handling_lenient(prefer)))


@router.post("")
async def post_bundle(request: Request, gate: GateDep, ctx: ContextDep,
                      who: IdentityDep) -> Response:
    body = await _body(request)
    return _respond(await run_in_threadpool(gate.bundle, ctx, who, body))


@router.get("/Patient/{rid}/$everything")
def everything(rid: str, request: Request, gate: GateDep, ctx: ContextDep,
               who: IdentityDep) -> Response:
    # Its parameters (_type, start, _since, ...) arrive in the query: none is supported
    # yet, and one ignored would release more than was asked.
    asked = list(request.query_params.multi_items())
    parameters = {"resourceType": "Parameters",
                  "parameter": [{"name": k} for k, _ in asked]} if asked else None
    return _respond(gate.everything(ctx, who, rid, parameters))


@router.get("/Measure/{mid}/$evaluate-measure")
def evaluate_measure(mid: str, request: Request, gate: GateDep, ctx: ContextDep,
                     who: IdentityDep) -> Response:
    """The hub's cockpit: residents per zone and need, with differential privacy."""
    return _respond(gate.evaluate_measure(ctx, who, mid,
                                          list(request.query_params.multi_items())))


@router.post("/Patient/{rid}/$everything")
async def everything_post(rid: str, request: Request, gate: GateDep, ctx: ContextDep,
                          who: IdentityDep) -> Response:
    """The operation invoked by POST (R4 operations.html): a body, if any, is a
    Parameters resource naming none, since $everything here takes no parameters yet."""
    parameters = await _body(request) if await request.body() else None
    return _respond(await run_in_threadpool(gate.everything, ctx, who, rid, parameters))


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
def vread(rtype: str, rid: str, vid: str, request: Request, gate: GateDep, ctx: ContextDep,
          who: IdentityDep) -> Response:
    return _respond(gate.read(ctx, who, rtype, rid, parse_version(vid), _conditions(request)))


@router.head("/{rtype}/{rid}/_history/{vid}")
def vread_head(rtype: str, rid: str, vid: str, request: Request, gate: GateDep,
               ctx: ContextDep, who: IdentityDep) -> Response:
    return _respond(gate.read(ctx, who, rtype, rid, parse_version(vid), _conditions(request)),
                    head=True)


@router.get("/Patient/{pid}/{rtype}")
def compartment_search(pid: str, rtype: str, request: Request, gate: GateDep,
                       ctx: ContextDep, who: IdentityDep, prefer: Prefer = None) -> Response:
    pairs = list(request.query_params.multi_items())
    return _respond(gate.search(ctx, who, rtype, pairs, handling_lenient(prefer), pid))


@router.get("/{rtype}")
def search(rtype: str, request: Request, gate: GateDep, ctx: ContextDep,
           who: IdentityDep, prefer: Prefer = None) -> Response:
    pairs = list(request.query_params.multi_items())
    return _respond(gate.search(ctx, who, rtype, pairs, handling_lenient(prefer)))


@router.post("/{rtype}/_search")
async def search_post(rtype: str, request: Request, gate: GateDep, ctx: ContextDep,
                      who: IdentityDep, prefer: Prefer = None) -> Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded" and await request.body():
        # R4 searches by POST with a form; a JSON body's filters, ignored, would release
        # more than was asked.
        raise UnsupportedMedia("Send search parameters as application/x-www-form-urlencoded.")
    form = await request.form()
    pairs = [*request.query_params.multi_items(),
             *((k, str(v)) for k, v in form.multi_items())]
    return _respond(await run_in_threadpool(gate.search, ctx, who, rtype, pairs,
                                            handling_lenient(prefer)))


@router.get("/{rtype}/{rid}")
def read(rtype: str, rid: str, request: Request, gate: GateDep, ctx: ContextDep,
         who: IdentityDep) -> Response:
    return _respond(gate.read(ctx, who, rtype, rid, None, _conditions(request)))


@router.head("/{rtype}/{rid}")
def read_head(rtype: str, rid: str, request: Request, gate: GateDep, ctx: ContextDep,
              who: IdentityDep) -> Response:
    return _respond(gate.read(ctx, who, rtype, rid, None, _conditions(request)), head=True)


@router.post("/{rtype}")
async def create(rtype: str, request: Request, gate: GateDep, ctx: ContextDep,
                 who: IdentityDep, prefer: Prefer = None,
                 if_none_exist: Annotated[str | None, Header()] = None) -> Response:
    body = await _body(request)
    answer = await run_in_threadpool(gate.create, ctx, who, rtype, body, if_none_exist)
    return _respond(as_preferred(answer, prefer))


@router.put("/{rtype}")
async def conditional_update(rtype: str, request: Request, gate: GateDep, ctx: ContextDep,
                             who: IdentityDep, prefer: Prefer = None,
                             if_match: IfMatch = None) -> Response:
    body = await _body(request)
    answer = await run_in_threadpool(gate.conditional_update, ctx, who, rtype,
                                     request.url.query, body, if_match)
    return _respond(as_preferred(answer, prefer))


@router.put("/{rtype}/{rid}")
async def update(rtype: str, rid: str, request: Request, gate: GateDep,
                 ctx: ContextDep, who: IdentityDep, prefer: Prefer = None,
                 if_match: IfMatch = None) -> Response:
    body = await _body(request)
    answer = await run_in_threadpool(gate.update, ctx, who, rtype, rid, body, if_match)
    return _respond(as_preferred(answer, prefer))


@router.patch("/{rtype}/{rid}")
async def patch(rtype: str, rid: str, request: Request, gate: GateDep,
                ctx: ContextDep, who: IdentityDep, prefer: Prefer = None,
                if_match: IfMatch = None) -> Response:
    if _mime(request) != JSON_PATCH:
        raise UnsupportedMedia(f"Send a JSON Patch as {JSON_PATCH}.")
    operations = parse_json(await request.body())
    answer = await run_in_threadpool(gate.patch, ctx, who, rtype, rid, operations, if_match)
    return _respond(as_preferred(answer, prefer))


@router.delete("/{rtype}")
def conditional_delete(rtype: str, request: Request, gate: GateDep, ctx: ContextDep,
                       who: IdentityDep) -> Response:
    return _respond(gate.conditional_delete(ctx, who, rtype, request.url.query))


@router.delete("/{rtype}/{rid}")
def delete(rtype: str, rid: str, gate: GateDep, ctx: ContextDep,
           who: IdentityDep) -> Response:
    return _respond(gate.delete(ctx, who, rtype, rid))

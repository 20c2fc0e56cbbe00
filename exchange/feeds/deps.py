"""FastAPI dependencies, one per thing a route may hold: ``GateDep`` (the one road),
``PublicationDep`` (what the exchange publishes; each read recorded), ``ContextDep``,
``IdentityDep``, and ``PublicRead`` for a public route that reads nothing published.

Routes never receive the whole ``Services``: whatever they do with data, they do through the
gate. The first three never block, so they are ``async`` and skip a hop through the thread
pool; authentication reads the client registry and may write the ledger, so it runs in a
thread.
"""

from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Request

from exchange.gate import Gate, RequestContext, request_id
from exchange.identity.model import Identity
from exchange.publication import Publication


async def get_gate(request: Request) -> Gate:
    gate: Gate = request.app.state.gate
    return gate


GateDep = Annotated[Gate, Depends(get_gate)]


async def get_context(request: Request) -> RequestContext:
    return context_of(request)


def context_of(request: Request) -> RequestContext:
    """What the audit entry says of the request: its id, address, method, path, query."""
    existing = getattr(request.state, "request_id", None)
    rid = existing or request.headers.get("X-Request-ID", "")
    if not (0 < len(rid) <= 64 and rid.replace("-", "").isalnum()):
        rid = request_id()
    request.state.request_id = rid
    # Percent-encoded UTF-8, so that a reason can be written in Chinese.
    reason = unquote(request.headers.get("X-Break-Glass-Reason", ""))[:500] or None
    return RequestContext(rid, request.client.host if request.client else None,
                          request.method, request.url.path, request.url.query, reason)


ContextDep = Annotated[RequestContext, Depends(get_context)]


def get_publication(request: Request, gate: GateDep, ctx: ContextDep) -> Publication:
    """What the exchange publishes; reading it is recorded like any request (in a
    thread: the append waits for its commit)."""
    gate.record_public(ctx)
    publication: Publication = request.app.state.publication
    return publication


PublicationDep = Annotated[Publication, Depends(get_publication)]


def record_public_read(gate: GateDep, ctx: ContextDep) -> None:
    """For a public route that reads nothing published (a page, the consent templates)."""
    gate.record_public(ctx)


PublicRead = Depends(record_public_read)


def get_identity(request: Request, gate: GateDep, ctx: ContextDep) -> Identity:
    return gate.tokens.authenticate(ctx, request.headers.get("Authorization", ""))


IdentityDep = Annotated[Identity, Depends(get_identity)]

"""FastAPI dependencies: ``ServicesDep``, ``ContextDep`` and ``IdentityDep``.

The first two never block, so they are ``async`` and skip a hop through the thread pool;
authentication reads the client registry and may write the ledger, so it runs in a thread.
"""

from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Request

from exchange.errors import NotAuthenticated
from exchange.identity.model import Identity
from exchange.road import RequestContext, request_id
from exchange.services import Services


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_context(request: Request) -> RequestContext:
    rid = request.headers.get("X-Request-ID", "")
    if not (0 < len(rid) <= 64 and rid.replace("-", "").isalnum()):
        rid = request_id()
    request.state.request_id = rid
    # Percent-encoded UTF-8, so that a reason can be written in Chinese.
    reason = unquote(request.headers.get("X-Break-Glass-Reason", ""))[:500] or None
    return RequestContext(rid, request.client.host if request.client else None,
                          request.method, request.url.path, request.url.query, reason)


ContextDep = Annotated[RequestContext, Depends(get_context)]


def get_identity(request: Request, services: ServicesDep, ctx: ContextDep) -> Identity:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("A bearer access token is required.")
        return services.tokens.authenticate(token.strip())
    except NotAuthenticated as exc:
        # A refused token is a denial too: it is recorded before the answer leaves.
        services.gate.record_refusal(ctx, "authenticate", exc.message)
        raise


IdentityDep = Annotated[Identity, Depends(get_identity)]

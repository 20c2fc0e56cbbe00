"""SMART Backend Services: discovery documents and the token endpoint."""

from typing import Annotated

import orjson
from fastapi import APIRouter, Form, Response

from exchange.feeds.deps import ContextDep, GateDep, PublicationDep
from exchange.fhir.capability import smart_configuration
from exchange.gate import TokenRequest

router = APIRouter()


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@router.get("/.well-known/smart-configuration")
@router.get("/fhir/.well-known/smart-configuration")
def smart_config(published: PublicationDep) -> Response:
    return _json(smart_configuration(published.token_url, published.jwks_url))


@router.get("/.well-known/jwks.json")
def jwks(published: PublicationDep) -> Response:
    return _json(published.token_jwks)


@router.post("/auth/token")
def token(gate: GateDep, ctx: ContextDep,
          grant_type: Annotated[str, Form()] = "",
          client_assertion_type: Annotated[str, Form()] = "",
          client_assertion: Annotated[str, Form()] = "",
          scope: Annotated[str, Form()] = "",
          purpose_of_use: Annotated[str, Form()] = "") -> Response:
    answer = gate.tokens.issue(ctx, TokenRequest(grant_type, client_assertion_type,
                                                 client_assertion, scope, purpose_of_use))
    return _json(answer.body, answer.status)

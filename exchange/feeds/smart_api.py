"""SMART Backend Services: discovery documents and the token endpoint."""

from typing import Annotated

import orjson
from fastapi import APIRouter, Form, Response

from exchange.decisions.bundle import TOKEN_GRANT
from exchange.errors import ExchangeError
from exchange.feeds.deps import ContextDep, ServicesDep
from exchange.fhir.capability import smart_configuration
from exchange.identity.model import Identity
from exchange.identity.scopes import parse_scopes
from exchange.identity.tokens import ASSERTION_TYPE, TokenRefused

router = APIRouter()


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@router.get("/.well-known/smart-configuration")
@router.get("/fhir/.well-known/smart-configuration")
def smart_config(services: ServicesDep) -> Response:
    base = services.settings.base_url.rstrip("/")
    return _json(smart_configuration(services.settings.token_url,
                                     f"{base}/.well-known/jwks.json"))


@router.get("/.well-known/jwks.json")
def jwks(services: ServicesDep) -> Response:
    return _json(services.tokens.public_jwks())


@router.post("/auth/token")
def token(services: ServicesDep, ctx: ContextDep,
          grant_type: Annotated[str, Form()] = "",
          client_assertion_type: Annotated[str, Form()] = "",
          client_assertion: Annotated[str, Form()] = "",
          scope: Annotated[str, Form()] = "",
          purpose_of_use: Annotated[str, Form()] = "") -> Response:
    client_id: str | None = None
    try:
        if grant_type != "client_credentials":
            raise TokenRefused("unsupported_grant_type", "Only client_credentials is supported.")
        if client_assertion_type != ASSERTION_TYPE or not client_assertion:
            raise TokenRefused("invalid_client", "A private_key_jwt client assertion is "
                               "required.", 401)
        asserted = services.tokens.verify_assertion(client_assertion)
        client_id = asserted.client.client_id
        requested = parse_scopes(scope)
        if not requested:
            raise TokenRefused("invalid_scope", "Ask for SMART system scopes such as "
                               "system/Observation.rs.", client_id=client_id)
        if not purpose_of_use:
            raise TokenRefused("invalid_request", "purpose_of_use is required (for example "
                               "TREAT or HPAYMT).", client_id=client_id)
        grant = services.decision_point.decide(TOKEN_GRANT, {
            "client": asserted.client.policy_view(), "purpose": purpose_of_use,
            "requested_scopes": [s.policy_view() for s in requested]})
        if grant.get("allow") is not True:
            reasons = [str(r) for r in grant.get("reasons", [])]
            error = "invalid_request" if "purpose_not_registered" in reasons \
                else "invalid_scope"
            raise TokenRefused(error, "Refused: " + ", ".join(reasons), client_id=client_id)
        issued = services.tokens.issue(asserted.client, [str(s) for s in grant["scopes"]],
                                       purpose_of_use)
    except TokenRefused as refused:
        services.gate.record_refusal(ctx, "token", refused.description,
                                     refused.client_id or client_id, refused.status)
        return _json({"error": refused.error, "error_description": refused.description},
                     refused.status)
    except ExchangeError as exc:
        services.gate.record_refusal(ctx, "token", exc.code, client_id, exc.status)
        return _json({"error": "temporarily_unavailable", "error_description": exc.message},
                     exc.status)
    who = Identity("client", asserted.client.client_id, asserted.client.organization,
                   asserted.client.organization_kind, purpose=purpose_of_use)
    with services.gate.recording(ctx, who, "token", {"client_id": client_id,
                                                      "scope": issued["scope"],
                                                      "purpose": purpose_of_use}):
        pass
    return _json(issued)

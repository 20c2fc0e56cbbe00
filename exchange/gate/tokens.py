"""The road's door: access tokens issued under the token policy (asked through the
decider, never the engine), and bearer tokens turned into identities. Every refusal is
recorded before the answer leaves, like any other denial."""

from dataclasses import dataclass
from typing import Any

import orjson

from exchange.decisions.decide import Decider
from exchange.errors import ExchangeError, NotAuthenticated
from exchange.gate.context import RequestContext, mark_recorded
from exchange.gate.recording import Recorder
from exchange.identity.model import Identity
from exchange.identity.registry import Client
from exchange.identity.scopes import parse_scopes
from exchange.identity.tokens import ASSERTION_TYPE, TokenRefused, TokenService


@dataclass(frozen=True)
class TokenRequest:
    grant_type: str
    client_assertion_type: str
    client_assertion: str
    scope: str
    purpose_of_use: str


@dataclass(frozen=True)
class TokenAnswer:
    """What the token endpoint answers: an OAuth 2.0 body and its status."""

    status: int
    body: dict[str, Any]


class TokenGrants:
    def __init__(self, recorder: Recorder, decider: Decider, tokens: TokenService) -> None:
        self._recorder = recorder
        self._decider = decider
        self._tokens = tokens
        # (registration, purpose, scopes, policy revision) -> still granted
        self._still_granted: dict[tuple[bytes, str, tuple[str, ...], str], bool] = {}

    def issue(self, ctx: RequestContext, request: TokenRequest) -> TokenAnswer:
        client_id: str | None = None
        purpose = request.purpose_of_use
        try:
            if request.grant_type != "client_credentials":
                raise TokenRefused("unsupported_grant_type",
                                   "Only client_credentials is supported.")
            if request.client_assertion_type != ASSERTION_TYPE or not request.client_assertion:
                raise TokenRefused("invalid_client", "A private_key_jwt client assertion is "
                                   "required.", 401)
            asserted = self._tokens.verify_assertion(request.client_assertion)
            client_id = asserted.client.client_id
            requested = parse_scopes(request.scope)
            if not requested:
                raise TokenRefused("invalid_scope", "Ask for SMART system scopes such as "
                                   "system/Observation.rs.", client_id=client_id)
            if not purpose:
                purpose = _registered_purpose(asserted.client, client_id)
            allowed, scopes, reasons = self._decider.grant_token(
                asserted.client.policy_view(), purpose, [s.policy_view() for s in requested])
            if not allowed:
                error = "invalid_request" if "purpose_not_registered" in reasons \
                    else "invalid_scope"
                raise TokenRefused(error, "Refused: " + ", ".join(reasons),
                                   client_id=client_id)
            issued = self._tokens.issue(asserted.client, scopes, purpose)
        except TokenRefused as refused:
            self._recorder.record_refusal(ctx, "token", refused.description,
                                          refused.client_id or client_id, refused.status)
            return TokenAnswer(refused.status, {"error": refused.error,
                                                "error_description": refused.description})
        except ExchangeError as exc:
            self._recorder.record_refusal(ctx, "token", exc.code, client_id, exc.status)
            return TokenAnswer(exc.status, {"error": "temporarily_unavailable",
                                            "error_description": exc.message})
        who = Identity("client", asserted.client.client_id, asserted.client.organization,
                       asserted.client.organization_kind, purpose=purpose)
        with self._recorder.recording(ctx, who, "token", {"client_id": client_id,
                                                          "scope": issued["scope"],
                                                          "purpose": purpose}):
            pass
        return TokenAnswer(200, issued)

    def authenticate(self, ctx: RequestContext, authorization: str) -> Identity:
        """The identity a bearer token carries; a refused token is recorded first.

        A client's token is held, on every request, to the client's registration as it is
        now: the token policy must still grant every scope it carries for its purpose, so a
        client narrowed or disabled loses its tokens' power at once (and a token forged
        with the exchange's own key gains nothing beyond the registration)."""
        scheme, _, token = authorization.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise NotAuthenticated("A bearer access token is required.")
            identity, client = self._tokens.verify_access_token(token.strip())
            if identity.kind == "client":
                self._check_registration(identity, client)
            return identity
        except ExchangeError as exc:
            self._recorder.record_refusal(ctx, "authenticate", exc.message, status=exc.status)
            mark_recorded(exc)
            raise

    def _check_registration(self, identity: Identity, client: Client | None) -> None:
        if client is None or identity.purpose is None:
            raise NotAuthenticated("The client of this token is no longer active.")
        carried = sorted(s.text for s in identity.scopes)
        key = (orjson.dumps(client.policy_view(), option=orjson.OPT_SORT_KEYS),
               identity.purpose, tuple(carried), self._decider.revision)
        if key not in self._still_granted:
            allowed, granted, _ = self._decider.grant_token(
                client.policy_view(), identity.purpose,
                [s.policy_view() for s in identity.scopes])
            if len(self._still_granted) > 10_000:
                self._still_granted.clear()
            self._still_granted[key] = allowed and set(carried) <= set(granted)
        if not self._still_granted[key]:
            raise NotAuthenticated("The access token carries more than the client's "
                                   "registration grants now.")


def _registered_purpose(client: Client, client_id: str) -> str:
    """The purpose of a client that sent none: its one registered purpose, so that a
    SMART Backend Services client that knows nothing of purposes works unmodified. With
    several, choosing one would be the exchange's guess at why the client asks: refused,
    naming the choices."""
    registered = sorted(client.purposes)
    if len(registered) == 1:
        return registered[0]
    choices = ", ".join(registered) or "none"
    raise TokenRefused("invalid_request", "purpose_of_use is required: this client is "
                       f"registered for several purposes ({choices}); send one of them.",
                       client_id=client_id)

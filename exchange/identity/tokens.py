"""SMART Backend Services: client assertions in, short-lived signed access tokens out.

Client assertion (RFC 7523, SMART Backend Services): a JWT signed RS384 or ES384 with a
key the client registered; ``iss`` = ``sub`` = client id, ``aud`` = the token URL, ``exp``
at most five minutes ahead, ``jti`` never seen before. Access tokens are ES256 JWTs signed
by the exchange, carrying client, organization, scopes and purpose of use.
"""

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from consent.proxies import delegation_view
from exchange.errors import DependencyUnavailable, NotAuthenticated
from exchange.identity.model import Identity
from exchange.identity.registry import Client, ClientRegistry
from exchange.identity.scopes import Scope, parse_scopes
from exchange.ports import Clock
from exchange.store.tables import UsedAssertion

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("RS384", "ES384")
ACCESS_TOKEN_ALGORITHM = "ES256"  # noqa: S105  (an algorithm name)
LEEWAY = timedelta(seconds=30)


class TokenRefused(Exception):
    """An OAuth 2.0 error (RFC 6749 section 5.2); ``description`` is safe to show."""

    def __init__(self, error: str, description: str, status: int = 400,
                 client_id: str | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.client_id = client_id


@dataclass(frozen=True)
class AssertedClient:
    client: Client
    jti: str


class TokenService:
    def __init__(self, engine: Engine, registry: ClientRegistry, clock: Clock,
                 signing_key: ec.EllipticCurvePrivateKey, issuer: str, token_url: str,
                 audience: str, lifetime_seconds: int = 300,
                 max_assertion_seconds: int = 300,
                 proxy_resolver: Callable[[str], dict[str, Any] | None] | None = None,
                 zone: tzinfo = UTC) -> None:
        self._engine = engine
        self._registry = registry
        self._clock = clock
        self._key = signing_key
        self._public = signing_key.public_key()
        self.issuer = issuer
        self.token_url = token_url
        self.audience = audience
        self.lifetime = timedelta(seconds=lifetime_seconds)
        self.max_assertion = timedelta(seconds=max_assertion_seconds)
        # RelatedPerson id -> the current RelatedPerson resource (None if gone)
        self._proxy_resolver = proxy_resolver
        self._zone = zone  # a delegation "until 31 December" ends at local midnight

    # -- client assertions ------------------------------------------------------------------

    def verify_assertion(self, assertion: str) -> AssertedClient:
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenRefused("invalid_client", "The client assertion is not a JWT.",
                               401) from None
        alg = header.get("alg")
        client_id = unverified.get("iss")
        if alg not in ASSERTION_ALGORITHMS:
            raise TokenRefused("invalid_client", "The client assertion must be signed with "
                               "RS384 or ES384.", 401, _str(client_id))
        if not isinstance(client_id, str):
            raise TokenRefused("invalid_client", "The client assertion has no issuer.", 401)
        client = self._registry.get(client_id)
        if client is None or not client.active:
            raise TokenRefused("invalid_client", "Unknown or inactive client.", 401, client_id)
        claims = self._verified_claims(assertion, alg, header.get("kid"), client)
        now = self._clock.now()
        if claims.get("sub") != client_id:
            raise TokenRefused("invalid_client", "iss and sub must both be the client id.",
                               401, client_id)
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise TokenRefused("invalid_client", "The client assertion has no exp.", 401,
                               client_id)
        expires = datetime.fromtimestamp(exp, now.tzinfo)
        if expires <= now - LEEWAY:
            raise TokenRefused("invalid_client", "The client assertion has expired.", 401,
                               client_id)
        if expires > now + self.max_assertion + LEEWAY:
            raise TokenRefused("invalid_client", "The client assertion's exp is more than "
                               "five minutes ahead.", 401, client_id)
        for claim in ("nbf", "iat"):  # an assertion from the future is not yet valid
            value = claims.get(claim)
            if value is None:
                continue
            if not isinstance(value, int | float) or isinstance(value, bool) or \
                    datetime.fromtimestamp(value, now.tzinfo) > now + LEEWAY:
                raise TokenRefused("invalid_client", f"The client assertion's {claim} is in "
                                   "the future.", 401, client_id)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 255:
            raise TokenRefused("invalid_client", "The client assertion has no jti.", 401,
                               client_id)
        self._remember_jti(client_id, jti, expires)
        return AssertedClient(client, jti)

    def _verified_claims(self, assertion: str, alg: str, kid: Any,
                         client: Client) -> dict[str, Any]:
        keys = [k for k in client.jwks.get("keys", [])
                if (kid is None or k.get("kid") == kid)
                and k.get("kty") == ("RSA" if alg.startswith("RS") else "EC")]
        for jwk in keys:
            try:
                key = jwt.PyJWK.from_dict(jwk, algorithm=alg).key
                claims: dict[str, Any] = jwt.decode(
                    assertion, key, algorithms=[alg], audience=self.token_url,
                    options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                             "require": ["iss", "sub", "aud", "exp", "jti"]})
                return claims
            except jwt.InvalidAudienceError:
                raise TokenRefused("invalid_client", "The client assertion's aud must be the "
                                   "token URL.", 401, client.client_id) from None
            except jwt.MissingRequiredClaimError as exc:
                raise TokenRefused("invalid_client", f"The client assertion lacks "
                                   f"{exc.claim}.", 401, client.client_id) from None
            except (jwt.PyJWTError, ValueError, TypeError):
                continue
        raise TokenRefused("invalid_client", "The client assertion's signature does not "
                           "verify with a registered key.", 401, client.client_id)

    def _remember_jti(self, client_id: str, jti: str, expires: datetime) -> None:
        now = self._clock.now()
        try:
            with Session(self._engine) as session:
                session.execute(delete(UsedAssertion).where(
                    UsedAssertion.expires_at < now - self.max_assertion - LEEWAY))  # type: ignore[arg-type]
                session.add(UsedAssertion(client_id=client_id, jti=jti,
                                          expires_at=expires + LEEWAY))
                session.commit()
        except IntegrityError:
            raise TokenRefused("invalid_client", "The client assertion was used before "
                               "(jti replay).", 401, client_id) from None
        except SQLAlchemyError:
            raise DependencyUnavailable("The token service is unavailable.") from None

    # -- access tokens ----------------------------------------------------------------------

    def issue(self, client: Client, scopes: list[str], purpose: str) -> dict[str, Any]:
        now = self._clock.now()
        claims = {
            "iss": self.issuer, "sub": client.client_id, "aud": self.audience,
            "iat": int(now.timestamp()), "exp": int((now + self.lifetime).timestamp()),
            "jti": secrets.token_urlsafe(16), "kind": "client",
            "client_id": client.client_id, "org": client.organization,
            "org_kind": client.organization_kind,
            "scope": " ".join(scopes), "purpose_of_use": purpose,
        }
        return {"access_token": self._sign(claims), "token_type": "bearer",
                "expires_in": int(self.lifetime.total_seconds()), "scope": claims["scope"],
                "purpose_of_use": purpose}

    def issue_resident(self, patient_id: str) -> str:
        """A resident's session token; the portal's login issues these."""
        now = self._clock.now()
        return self._sign({
            "iss": self.issuer, "sub": f"Patient/{patient_id}", "aud": self.audience,
            "iat": int(now.timestamp()), "exp": int((now + self.lifetime).timestamp()),
            "jti": secrets.token_urlsafe(16), "kind": "resident"})

    def issue_proxy(self, related_person_id: str) -> str:
        """A session token for a family member or guardian, as the portal will issue."""
        now = self._clock.now()
        return self._sign({
            "iss": self.issuer, "sub": f"RelatedPerson/{related_person_id}",
            "aud": self.audience, "iat": int(now.timestamp()),
            "exp": int((now + self.lifetime).timestamp()),
            "jti": secrets.token_urlsafe(16), "kind": "proxy"})

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm=ACCESS_TOKEN_ALGORITHM,
                          headers={"kid": self.key_id})

    @property
    def key_id(self) -> str:
        numbers = self._public.public_numbers()
        return f"exchange-{numbers.x % (1 << 40):010x}"

    def public_jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self._public))
        jwk.update(kid=self.key_id, use="sig", alg=ACCESS_TOKEN_ALGORITHM)
        return {"keys": [jwk]}

    def _proxy(self, subject: str, token_id: str) -> Identity:
        if not subject.startswith("RelatedPerson/") or self._proxy_resolver is None:
            raise NotAuthenticated("The access token is not valid.")
        person = self._proxy_resolver(subject.split("/", 1)[1])
        if person is None:
            raise NotAuthenticated("The delegation behind this token no longer exists.")
        resident, delegation = delegation_view(person, self._zone)
        if resident is None:
            raise NotAuthenticated("The delegation names no resident.")
        return Identity("proxy", subject, token_id=token_id, acting_for=resident,
                        delegation=delegation)

    def authenticate(self, token: str) -> Identity:
        """The identity behind a bearer token; ``NotAuthenticated`` for anything wrong."""
        return self.verify_access_token(token)[0]

    def verify_access_token(self, token: str) -> tuple[Identity, Client | None]:
        """The identity behind a bearer token and, for a client, its registration as read
        for this request (so that it is checked against the same registration)."""
        try:
            claims = jwt.decode(token, self._public, algorithms=[ACCESS_TOKEN_ALGORITHM],
                                audience=self.audience, issuer=self.issuer,
                                options={"verify_exp": False, "verify_iat": False,
                                         "verify_nbf": False,
                                         "require": ["exp", "iat", "sub", "kind", "jti"]})
        except jwt.PyJWTError:
            raise NotAuthenticated("The access token is not valid.") from None
        now = self._clock.now()
        exp, iat = claims["exp"], claims["iat"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, iat)):
            raise NotAuthenticated("The access token is not valid.")
        if datetime.fromtimestamp(exp, now.tzinfo) <= now:
            raise NotAuthenticated("The access token has expired.")
        # Even a token signed with the exchange's own key is held to what the exchange
        # issues: never from the future, never longer-lived than the settings allow.
        if datetime.fromtimestamp(iat, now.tzinfo) > now + LEEWAY or \
                exp - iat > self.lifetime.total_seconds():
            raise NotAuthenticated("The access token is not valid.")
        if claims["kind"] == "resident":
            sub = str(claims["sub"])
            if not sub.startswith("Patient/"):
                raise NotAuthenticated("The access token is not valid.")
            return Identity("resident", sub.split("/", 1)[1], token_id=claims["jti"]), None
        if claims["kind"] == "proxy":
            return self._proxy(str(claims["sub"]), claims["jti"]), None
        if claims["kind"] != "client":
            raise NotAuthenticated("The access token is not valid.")
        client = self._registry.get(str(claims["sub"]))
        if client is None or not client.active:
            raise NotAuthenticated("The client of this token is no longer active.")
        scopes: tuple[Scope, ...] = tuple(parse_scopes(str(claims.get("scope", ""))))
        if str(claims.get("purpose_of_use")) not in client.purposes:
            raise NotAuthenticated("The access token's purpose is not registered now.")
        return Identity("client", client.client_id, client.organization,
                        client.organization_kind, scopes, str(claims.get("purpose_of_use")),
                        token_id=claims["jti"]), client


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None

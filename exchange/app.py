"""The composition root: builds the services from settings and wires the HTTP app.

This is the only module that picks concrete implementations (adapters) for the ports.
"""

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.opa_server import OpaDecisionPoint
from adapters.rego_embedded import RegoDecisionPoint
from exchange.audit.checkpoint import public_pem
from exchange.audit.ledger import AuditLedger
from exchange.clock import SystemClock, SystemMonotonic
from exchange.config import Settings
from exchange.decisions.bundle import check_complete, load_bundle
from exchange.decisions.decide import Decider
from exchange.decisions.replay import PolicyArchive, Replayer
from exchange.errors import ExchangeError, InvalidRequest, NotFound
from exchange.feeds import consent_api, fhir_api, oversight_api, smart_api
from exchange.feeds.body_limit import BodyLimit
from exchange.feeds.deps import PublicRead, context_of
from exchange.fhir.outcome import render_error
from exchange.fhir.references import LocalBases
from exchange.fhir.release import FHIR_MIME
from exchange.gate import Gate, GateParts, was_recorded
from exchange.identity.registry import ClientRegistry
from exchange.identity.tokens import TokenService
from exchange.ports import Clock, DecisionPoint, KeyProvider, Monotonic
from exchange.privacy.blind_index import BlindIndex
from exchange.privacy.envelope import Vault
from exchange.privacy.key_file import LocalKeyFile
from exchange.privacy.profiles import load_profiles
from exchange.publication import Publication
from exchange.services import Services
from exchange.store.database import make_engine
from exchange.store.repository import ResourceRepository
from exchange.web import pages

log = logging.getLogger("exchange")
VERSION = "0.1.0"


def build_services(settings: Settings, *, clock: Clock | None = None,
                   decision_point: DecisionPoint | None = None,
                   keys: KeyProvider | None = None,
                   monotonic: Monotonic | None = None) -> Services:
    # The policies come whole or the exchange does not start (before anything is made).
    bundle = load_bundle(settings.policy_dir)
    profiles = load_profiles(settings.policy_dir / "exchange" / "profiles",
                             settings.k_anonymity)
    check_complete(bundle, profiles)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    clock = clock or SystemClock()
    monotonic = monotonic or SystemMonotonic()
    keys = keys or LocalKeyFile(settings.keys_dir / "keys.json")
    engine = make_engine(settings.sqlalchemy_url)
    vault = Vault(engine, keys)
    repository = ResourceRepository(engine, vault, BlindIndex(keys.derive("blind-index")),
                                    clock, settings.zone,
                                    LocalBases.of(settings.fhir_base, settings.server_aliases))
    if decision_point is None:
        timeout = settings.policy_timeout_seconds
        decision_point = (OpaDecisionPoint(settings.opa_url, settings.policy_dir, timeout)
                          if settings.decision_point == "opa"
                          else RegoDecisionPoint(settings.policy_dir, timeout))
    decider = Decider(decision_point, repository, clock, monotonic)
    ledger = AuditLedger(engine, vault, clock,
                         keys.audit_signing_key(),
                         settings.audit_origin)
    registry = ClientRegistry(engine)
    tokens = TokenService(engine, registry, clock,
                          keys.token_signing_key(),
                          issuer=settings.base_url.rstrip("/"), token_url=settings.token_url,
                          audience=settings.fhir_base,
                          lifetime_seconds=settings.access_token_seconds,
                          max_assertion_seconds=settings.max_assertion_seconds,
                          proxy_resolver=_related_person_reader(repository),
                          zone=settings.zone)
    archive = PolicyArchive(engine)
    archive.keep(bundle, clock.now())
    replayer = Replayer(archive, repository)
    gate = Gate(GateParts(repository, decider, ledger, registry, tokens, replayer, keys, clock,
                          monotonic, profiles, bundle.reasons),
                settings.fhir_base, settings.default_page_size, settings.max_page_size,
                settings.not_found_floor_seconds)
    publication = Publication(settings.base_url, settings.fhir_base, settings.token_url,
                              VERSION, tokens.public_jwks(), public_pem(ledger.public_key))
    return Services(settings, engine, clock, keys, vault, repository, decision_point,
                    decider, ledger, registry, tokens, gate, publication, replayer)


def _related_person_reader(repository: ResourceRepository) -> Callable[[str], Any]:
    def read(related_person_id: str) -> dict[str, Any] | None:
        row = repository.read("RelatedPerson", related_person_id)
        if row is None or row.deleted:
            return None
        body: dict[str, Any] = orjson.loads(row.body)
        return body

    return read


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    services = services or build_services(settings or Settings())
    app = FastAPI(title="Community Health Exchange", version=VERSION,
                  docs_url="/docs", redoc_url=None)
    # Routes get the gate and the publication, never the services themselves.
    app.state.gate = services.gate
    app.state.publication = services.publication
    app.include_router(smart_api.router)
    app.include_router(oversight_api.router)
    app.include_router(consent_api.router)
    app.include_router(fhir_api.router)
    app.include_router(pages.router, dependencies=[PublicRead])  # each page view recorded
    app.add_middleware(BodyLimit, max_bytes=services.settings.max_body_bytes)

    def outcome(request: Request, error: ExchangeError,
                cause: BaseException | None = None) -> Response:
        if not was_recorded(cause or error):
            # Refused before the road (no such endpoint, a malformed path, a wrong media
            # type): recorded all the same, before the answer leaves.
            try:
                services.gate.record_refusal(context_of(request), "request", error.code,
                                             status=error.status)
            except ExchangeError as unrecorded:
                error = unrecorded
        correlation = getattr(request.state, "request_id", None)
        headers = {"WWW-Authenticate": 'Bearer realm="exchange"'} if error.status == 401 else {}
        return Response(render_error(error, correlation), status_code=error.status,
                        media_type=FHIR_MIME, headers=headers)

    @app.exception_handler(ExchangeError)
    async def _exchange_error(request: Request, exc: ExchangeError) -> Response:
        return outcome(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return outcome(request, InvalidRequest("The request is malformed."))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return outcome(request, NotFound("No such endpoint."))
        if exc.status_code == 405:
            error = InvalidRequest("Method not allowed here.")
            error.status = 405  # type: ignore[misc]
            return outcome(request, error)
        return outcome(request, InvalidRequest("The request could not be handled."))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Never echo the exception: it may carry patient data. Log its type only.
        log.error("unexpected %s on %s", type(exc).__name__, request.url.path)
        return outcome(request, ExchangeError(), exc)

    return app


def default_policy_dir() -> Path:
    return Settings().policy_dir

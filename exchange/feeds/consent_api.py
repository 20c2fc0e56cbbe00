"""Consent templates for the portal: list them, and turn one plus choices into a Consent."""

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Response

from consent.templates import TEMPLATES, instantiate
from exchange.errors import InvalidRequest
from exchange.feeds.deps import ContextDep, GateDep, PublicRead
from exchange.fhir.dates import parse_range
from exchange.fhir.validation import validate_resource

router = APIRouter(prefix="/consent")


@router.get("/templates", dependencies=[PublicRead])
def templates() -> Response:
    return Response(orjson.dumps([t.describe() for t in TEMPLATES.values()]),
                    media_type="application/json")


@router.post("/templates/{template_id}/$instantiate")
def make_consent(template_id: str, choices: Annotated[dict[str, Any], Body()],
                 gate: GateDep, ctx: ContextDep) -> Response:
    """No data leaves here: the resident's choices come in, a draft Consent goes back.
    The portal then posts it to /fhir/Consent, on the one road, as the resident."""
    resident = choices.get("resident")
    if not isinstance(resident, str) or not resident:
        raise InvalidRequest("Say whose consent this is (resident).")
    end: datetime | None = None
    if isinstance(choices.get("end"), str):
        try:
            end = parse_range(choices["end"], gate.road.zone)[1]  # the day's end, here
        except ValueError:
            raise InvalidRequest("The end date is malformed.") from None
    exclude = choices.get("exclude") or []
    if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
        raise InvalidRequest("exclude lists resource types.")
    consent = instantiate(template_id, resident, organization=choices.get("organization"),
                          end=end, exclude=exclude)
    body = orjson.dumps(validate_resource(consent, here=gate.road.here))
    gate.record_public(ctx)  # once it succeeded; a refusal is recorded as one instead
    return Response(body, media_type="application/fhir+json")

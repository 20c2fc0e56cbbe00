"""What a client prefers (RFC 7240 ``Prefer``): a search's ``handling`` (strict or
lenient), and a write's answer (R4 http.html#ops, ``return=minimal|representation|
OperationOutcome``), where the status and headers never change, only the body does.
Representation is the default."""

from dataclasses import replace

import orjson

from exchange.fhir.outcome import operation_outcome
from exchange.gate.context import Disclosure

_SAID = {200: "The request succeeded.", 201: "The resource was created."}


def preferred_return(prefer: str | None) -> str:
    """The ``return`` preference named in a Prefer header, else ``representation``."""
    for part in (prefer or "").replace(",", ";").split(";"):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "return":
            value = value.strip().strip('"')
            if value in ("minimal", "representation", "OperationOutcome"):
                return value
    return "representation"


def handling_lenient(prefer: str | None) -> bool:
    """Whether a Prefer header asks a search for ``handling=lenient``. Strict is the
    default: a filter ignored would release more than the caller asked for."""
    return any(part.strip().replace(" ", "") == "handling=lenient"
               for part in (prefer or "").replace(",", ";").split(";"))


def as_preferred(disclosure: Disclosure, prefer: str | None) -> Disclosure:
    """A write's answer in the form the client prefers; any other answer as it is."""
    chosen = preferred_return(prefer)
    if chosen == "representation" or disclosure.status not in _SAID:
        return disclosure
    if chosen == "minimal":
        return replace(disclosure, body=b"")
    outcome = operation_outcome("information", "informational", _SAID[disclosure.status])
    return replace(disclosure, body=orjson.dumps(outcome))

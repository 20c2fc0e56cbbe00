"""An operator's act at the command line is recorded like any other, before it reports."""

import getpass

from exchange.gate import RequestContext, request_id
from exchange.identity.model import Identity
from exchange.services import Services


def operator() -> Identity:
    return Identity("operator", getpass.getuser())


def context(operation: str) -> RequestContext:
    return RequestContext(request_id(), None, "CLI", f"exchange {operation}")


def record_admin(services: Services, operation: str, details: dict[str, object]) -> None:
    """An administrative act is recorded like any other: before the command reports done."""
    with services.gate.recording(context(operation), operator(), "administration",
                                 {"operation": operation, **details}):
        pass

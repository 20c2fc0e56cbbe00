"""Who may read the audit trail, asked of the policies like any other disclosure."""

from exchange.errors import Forbidden
from exchange.gate.context import AuditDraft
from exchange.gate.road import Road
from exchange.identity.model import Identity

AUDIT_TYPE = "AuditEvent"
AUDIT_READ = "audit-read"  # the ledger's action for every reading of the trail


def authorize_trail(road: Road, draft: AuditDraft, who: Identity) -> str | None:
    """Who may read which part of the trail: oversight all of it, a resident their own.
    Returns the resident the view is confined to (None: the whole trail)."""
    road.deciding.require(draft, who, "search", AUDIT_TYPE, who.resident,
                          Forbidden("The audit trail is open to compliance officers only."))
    return who.resident


def require_oversight(road: Road, draft: AuditDraft, who: Identity) -> None:
    """The compliance views are the whole trail's: open to oversight clients only."""
    if who.kind != "client" or authorize_trail(road, draft, who) is not None:
        draft.outcome = "denied"
        raise Forbidden("The compliance views are open to compliance officers only.")

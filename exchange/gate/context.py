"""What travels the one road: the request's context, the draft of its audit entry, the
disclosure that leaves, and the small checks every step shares."""

import re
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from exchange.decisions.decide import Decision
from exchange.errors import ExchangeError, NotFound
from exchange.fhir.ids import check_id
from exchange.fhir.search_params import SUPPORTED_TYPES
from exchange.store.repository import StoredResource

UNKNOWN_RESIDENT = "The resource's resident is unknown to this client."


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    address: str | None
    method: str
    path: str
    query: str = ""
    break_glass_reason: str | None = None  # a clinic's stated emergency, if it gave one


@dataclass
class Disclosure:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)



@dataclass
class AuditDraft:
    action: str
    what: dict[str, Any]
    residents: set[str] = field(default_factory=set)
    decisions: list[Decision] = field(default_factory=list)
    outcome: str | None = None
    status: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    context: dict[str, str] = field(default_factory=dict)  # extra policy input
    started: float = 0.0  # on the road's monotonic clock, set when recording starts
    # An operation whose action is not one of the disclosing ones that discloses all the
    # same (a Bundle of reads): checked against consents changed in flight like a read.
    discloses: bool = False
    # Its answer, even a success, was shaped by a record the caller may not see or one
    # that does not exist (a reference that resolved to no resident): it leaves no sooner
    # than the not-found floor, so that the two take one time.
    conceals: bool = False
    # Every version the operation wrote, with its resident (None: a record of no one),
    # named in the entry that commits with it: "Type/id/_history/n".
    written: list[tuple[str | None, str]] = field(default_factory=list)


_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}\Z")


def check_type(rtype: str) -> None:
    if rtype not in SUPPORTED_TYPES:
        # a type's name is echoed to help; anything else might be data, and is not
        shown = rtype if _TYPE_NAME.match(rtype) else "(not shown)"
        raise NotFound(f"Resource type {shown} is not supported; the CapabilityStatement "
                       "lists those that are.")


def check_target(rtype: str, rid: str) -> None:
    """A type and an id from a path, checked before either is used."""
    check_type(rtype)
    check_id(rid)


def note_resident(draft: AuditDraft, row: StoredResource) -> None:
    if row.patient_id is not None:
        draft.residents.add(row.patient_id)


def note_attempt(draft: AuditDraft, resident: str | None) -> None:
    """An attempt on a resident's record is theirs to see, whether it was allowed or not."""
    if resident is not None:
        draft.residents.add(resident)


def outcome_of(exc: ExchangeError) -> str:
    if exc.status >= 500:
        return "error"
    return "refused" if exc.status in (400, 401, 403, 409, 412, 415, 422) else "not-found"


def version_headers(row: StoredResource) -> dict[str, str]:
    return {"ETag": f'W/"{row.version_id}"',
            "Last-Modified": row.last_updated.strftime("%a, %d %b %Y %H:%M:%S GMT")}


def request_id() -> str:
    return uuid.uuid4().hex


def mark_recorded(exc: BaseException) -> None:
    """Note on an exception that its operation's audit entry was written, so that the
    HTTP layer does not record it a second time."""
    with suppress(AttributeError):  # an exception type that takes no attributes
        exc._exchange_recorded = True  # type: ignore[attr-defined]


def was_recorded(exc: BaseException) -> bool:
    return bool(getattr(exc, "_exchange_recorded", False))

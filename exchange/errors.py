"""The one error hierarchy. Each class knows its HTTP status and FHIR issue type.

Messages are written by the exchange, never copied from an exception or a request,
so that no patient data can reach an error body or a log line.
"""

from typing import ClassVar


class ExchangeError(Exception):
    status: ClassVar[int] = 500
    issue_type: ClassVar[str] = "exception"
    code: ClassVar[str] = "internal-error"

    # An answer that must not tell a record the caller may not see from one that does not
    # exist: it leaves no sooner than the not-found floor (gate/recording.py).
    conceals: ClassVar[bool] = False

    def __init__(self, message: str = "The exchange could not complete the request.",
                 *, expression: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression or []


class InvalidRequest(ExchangeError):
    status = 400
    issue_type = "invalid"
    code = "invalid-request"


class InvalidSearch(ExchangeError):
    status = 400
    issue_type = "not-supported"
    code = "invalid-search"


class UnsupportedSearch(InvalidSearch):
    """A parameter or modifier this server does not know: a 400 by default (a filter
    ignored would release more than was asked), ignored and said so under
    ``Prefer: handling=lenient``. A malformed value is never ignored."""


class InvalidResource(ExchangeError):
    """Refused on the way in: the resource's shape, or a rule of this exchange (its
    resident unknown to the caller, a consent without a rule)."""

    status = 422
    issue_type = "invalid"
    code = "invalid-resource"


class UnknownResident(InvalidResource):
    """A write about a resident the caller may not see, or that does not exist, or that
    rests on records it may not see: one answer, in one time, for all of them."""

    conceals = True


class InvalidCode(InvalidResource):
    """A code outside the value set a required binding of the R4 specification names.

    400, not 422: R4 answers 400 for a resource that fails "basic FHIR validation rules",
    and 422 for profiles and business rules; a base required binding is the former."""

    status = 400
    issue_type = "code-invalid"
    code = "invalid-code"


class BrokenInvariant(InvalidResource):
    """A base-specification invariant that matters for safety is broken (a reference's
    format, a Quantity without a value, a Period that ends before it starts): 400 too."""

    status = 400
    issue_type = "invariant"
    code = "invariant"


class MalformedValue(InvalidResource):
    """A value its FHIR primitive type does not allow (a control character in a string):
    400, basic FHIR validation."""

    status = 400
    issue_type = "value"
    code = "invalid-value"


class NotAuthenticated(ExchangeError):
    status = 401
    issue_type = "login"
    code = "not-authenticated"


class Forbidden(ExchangeError):
    """Refused where the caller already knows the thing exists (its own scope, its purpose)."""

    status = 403
    issue_type = "forbidden"
    code = "forbidden"


class NotFound(ExchangeError):
    """Also the answer to a denial that must not reveal whether a record exists."""

    status = 404
    issue_type = "not-found"
    code = "not-found"
    conceals = True

    def __init__(self, message: str = "No such resource.") -> None:
        super().__init__(message)


class Gone(ExchangeError):
    status = 410
    issue_type = "deleted"
    code = "gone"


class Conflict(ExchangeError):
    status = 409
    issue_type = "conflict"
    code = "conflict"


class PreconditionFailed(ExchangeError):
    """A condition the request set does not hold: a stale ``If-Match`` (R4: 412)."""

    status = 412
    issue_type = "conflict"
    code = "precondition-failed"


class MultipleMatches(PreconditionFailed):
    """A conditional interaction whose criteria match more than one visible resource."""

    issue_type = "multiple-matches"
    code = "multiple-matches"


class UnsupportedMedia(ExchangeError):
    status = 415
    issue_type = "not-supported"
    code = "unsupported-media-type"


class PayloadTooLarge(ExchangeError):
    """A request body over the configured limit: refused before it is read whole."""

    status = 413
    issue_type = "too-long"
    code = "too-large"


class DependencyUnavailable(ExchangeError):
    """A dependency on the road failed: the answer is a denial, never data."""

    status = 503
    issue_type = "transient"
    code = "unavailable"


class PolicyUnavailable(DependencyUnavailable):
    code = "policy-unavailable"

    def __init__(self, message: str = "The policy decision point is unavailable.") -> None:
        super().__init__(message)


class AuditUnavailable(DependencyUnavailable):
    code = "audit-unavailable"

    def __init__(self, message: str = "The audit ledger is unavailable.") -> None:
        super().__init__(message)


class KeyUnavailable(DependencyUnavailable):
    code = "key-unavailable"

    def __init__(self, message: str = "A key needed for this record is unavailable.") -> None:
        super().__init__(message)


class IndexOutdated(DependencyUnavailable):
    """The search indexes are in an earlier form than this version reads: a search would
    miss records, so searches wait until the operator rebuilds them."""

    code = "index-outdated"

    def __init__(self, message: str = "The search index is being upgraded; the operator "
                                      "runs `exchange reindex`.") -> None:
        super().__init__(message)


class ConsentUnavailable(DependencyUnavailable):
    code = "consent-unavailable"

    def __init__(self, message: str = "The resident's consents could not be read.") -> None:
        super().__init__(message)


class ConsentChanged(ConsentUnavailable):
    """A consent the answer relied on changed while the request ran: nothing leaves."""

    code = "consent-changed"

    def __init__(self) -> None:
        super().__init__("A consent this answer relied on changed while it was prepared; "
                         "ask again.")

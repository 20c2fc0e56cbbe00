"""The search parameters of the audit trail's ``AuditEvent`` view, parsed into ledger
filters."""

from collections.abc import Sequence
from datetime import UTC, tzinfo
from typing import Any

from exchange.audit.balp import OUTCOME_CODES
from exchange.errors import InvalidSearch
from exchange.fhir.dates import parse_range
from exchange.fhir.search import DIGITS

AUDIT_PARAMS = frozenset({"patient", "agent", "purpose", "outcome", "date", "_count",
                          "_offset"})


def audit_filters(pairs: Sequence[tuple[str, str]],
                  zone: tzinfo = UTC) -> tuple[dict[str, Any], int, int]:
    filters: dict[str, Any] = {}
    count, offset = 50, 0
    for key, value in pairs:
        if key not in AUDIT_PARAMS:
            raise InvalidSearch(f"Unknown search parameter {key} for AuditEvent.")
        if key == "patient":
            filters["resident"] = value.removeprefix("Patient/")
        elif key == "agent":
            if not value.startswith("Organization/"):
                raise InvalidSearch("Parameter agent takes Organization/<id>.")
            filters["organization"] = value
        elif key == "purpose":
            filters["purpose"] = value.rpartition("|")[2]
        elif key == "outcome":
            wanted = set(value.split(","))
            if not wanted <= {"0", "4", "8", "12"}:
                raise InvalidSearch("Parameter outcome takes 0, 4, 8 or 12.")
            filters["outcomes"] = [o for o, c in OUTCOME_CODES.items() if c in wanted]
        elif key == "date":
            prefix, raw = (value[:2], value[2:]) if value[:2] in ("ge", "gt", "le", "lt", "eq") \
                else ("eq", value)
            try:
                low, high = parse_range(raw, zone)
            except ValueError:
                raise InvalidSearch("Parameter date is malformed.") from None
            if prefix in ("ge", "eq"):
                filters["since"] = low
            if prefix == "gt":
                filters["since"] = high
            if prefix in ("le", "eq"):
                filters["until"] = high
            if prefix == "lt":
                filters["until"] = low
        elif key in ("_count", "_offset"):
            if not DIGITS.match(value):
                raise InvalidSearch(f"Parameter {key} must be a non-negative integer.")
            if key == "_count":
                count = min(int(value), 500)
            else:
                offset = int(value)
    return filters, count, offset

"""Render errors as FHIR ``OperationOutcome`` bytes."""

import orjson

from exchange.errors import ExchangeError


def operation_outcome(severity: str, issue_type: str, text: str, *,
                      code: str | None = None, expression: list[str] | None = None,
                      correlation_id: str | None = None) -> dict[str, object]:
    issue: dict[str, object] = {"severity": severity, "code": issue_type,
                                "diagnostics": text}
    details_text = code if correlation_id is None else f"{code} (request {correlation_id})"
    if code:
        issue["details"] = {
            "coding": [{"system": "urn:exchange:error", "code": code}],
            "text": details_text,
        }
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def render_error(error: ExchangeError, correlation_id: str | None = None) -> bytes:
    return orjson.dumps(operation_outcome(
        "error" if error.status < 500 else "fatal", error.issue_type, error.message,
        code=error.code, expression=error.expression, correlation_id=correlation_id))


def render_information(text: str) -> bytes:
    return orjson.dumps(operation_outcome("information", "informational", text))

"""FHIRPath, for the few search parameters whose expression is more than a path (an
extension's value, ``deceased.exists() and deceased != false``). ``fhirpathpy`` compiles
each expression once; the model gives it R4's choice types for ``as`` and ``ofType``."""

from functools import lru_cache
from typing import Any

from fhirpathpy import compile as compile_fhirpath
from fhirpathpy.models import models


@lru_cache(maxsize=256)
def _compiled(expression: str) -> Any:
    return compile_fhirpath(expression, models["r4"])


def evaluate(resource: dict[str, Any], expression: str) -> list[Any]:
    """The values ``expression`` finds in ``resource``; an expression that fails on odd
    input finds nothing rather than breaking the write."""
    try:
        result = _compiled(expression)(resource)
    except Exception:
        return []
    return list(result) if isinstance(result, list) else [result]

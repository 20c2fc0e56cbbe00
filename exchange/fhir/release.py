"""The one place that chooses the FHIR release.

R4 (4.0.1) on the wire. fhir.resources 8 has no plain R4 package; its R4B models are the
R4-compatible ones, so they validate what we accept.
"""

from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

FHIR_VERSION = "4.0.1"
FHIR_MIME = "application/fhir+json"
ACCEPTED_MIMES = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})


@lru_cache(maxsize=256)
def model_class(resource_type: str) -> Any:
    """The validating model for a resource type; ``KeyError`` if there is none."""
    try:
        return get_fhir_model_class(resource_type)
    except (ValueError, KeyError) as exc:
        raise KeyError(resource_type) from exc

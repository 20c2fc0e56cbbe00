"""Apply a decision's obligations to stored JSON: withhold and minimize. De-identification
(the profile the obligations name) is in ``profiles.py``.

Pure functions over dicts; the read path never rebuilds fhir.resources models.
"""

from collections.abc import Iterable
from typing import Any

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
             "code": "SUBSETTED"}
ALWAYS_KEPT = frozenset({"resourceType", "id", "meta"})


def withheld(resource: dict[str, Any], labels: Iterable[dict[str, Any]]) -> bool:
    wanted = {(label.get("system"), label.get("code")) for label in labels}
    security = (resource.get("meta") or {}).get("security") or []
    return any((s.get("system"), s.get("code")) in wanted for s in security)


def keep_fields(resource: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    fields = list(fields)
    if "*" in fields:
        return resource
    keep = ALWAYS_KEPT | set(fields)
    if all(k in keep for k in resource):
        return resource
    shaped = {k: v for k, v in resource.items() if k in keep}
    meta = dict(shaped.get("meta") or {})
    tags = list(meta.get("tag") or [])
    if SUBSETTED not in tags:
        tags.append(SUBSETTED)
    meta["tag"] = tags
    shaped["meta"] = meta
    return shaped

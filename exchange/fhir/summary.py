"""``_summary`` (R4 search.html#summary): which elements of each match a search returns.

``true`` keeps the elements R4 marks as summary, ``text`` the narrative, ``id``, ``meta``
and the mandatory elements, ``data`` everything but the narrative. A subset is tagged
SUBSETTED, as R4 requires, so that nobody mistakes it for the whole resource. It applies
after the decision's minimization: it only ever removes.
"""

from typing import Any

from exchange.fhir.search_params import MANDATORY, SUMMARY

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
             "code": "SUBSETTED", "display": "subsetted"}


def summarize(resource: dict[str, Any], mode: str | None) -> dict[str, Any]:
    if mode is None:
        return resource
    rtype = str(resource.get("resourceType"))
    if mode == "data":
        kept = {k: v for k, v in resource.items() if k != "text"}
    else:
        wanted = SUMMARY.get(rtype, frozenset()) if mode == "true" else \
            MANDATORY.get(rtype, frozenset()) | {"text"}
        kept = {k: v for k, v in resource.items()
                if k in wanted or k in ("resourceType", "id", "meta")}
    meta = dict(kept.get("meta") or {})
    tags = list(meta.get("tag") or [])
    if SUBSETTED not in tags:
        tags.append(SUBSETTED)
    kept["meta"] = {**meta, "tag": tags}
    return kept

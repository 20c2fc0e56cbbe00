"""Apply a decision's obligations to stored JSON: withhold, minimize, pseudonymize.

Pure functions over dicts; the read path never rebuilds fhir.resources models.
"""

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
             "code": "SUBSETTED"}
ALWAYS_KEPT = frozenset({"resourceType", "id", "meta"})
# Elements that name or reach a person directly; never in a pseudonymized disclosure.
DIRECT_IDENTIFIERS = frozenset({"identifier", "name", "telecom", "photo", "contact", "text",
                                "link", "generalPractitioner", "note"})


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


def pseudonym(domain_key: bytes, reference: str) -> str:
    """A stable, recipient-specific stand-in for ``Type/id``; unlinkable across domains."""
    return hmac.new(domain_key, reference.encode(), hashlib.sha256).hexdigest()[:40]


def pseudonymize(resource: dict[str, Any], domain_key: bytes) -> dict[str, Any]:
    rtype = resource["resourceType"]
    out = _rewrite(resource, domain_key)
    out["id"] = pseudonym(domain_key, f"{rtype}/{resource['id']}")
    for element in DIRECT_IDENTIFIERS:
        out.pop(element, None)
    if isinstance(out.get("birthDate"), str):
        out["birthDate"] = out["birthDate"][:4]
    if isinstance(out.get("address"), list):
        out["address"] = [{k: a[k] for k in ("city", "district", "state", "country")
                           if k in a} for a in out["address"] if isinstance(a, dict)]
    meta = {k: v for k, v in (out.get("meta") or {}).items() if k in ("security", "tag")}
    tags = list(meta.get("tag") or [])
    tags.append({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                 "code": "PSEUDED"})
    meta["tag"] = tags
    out["meta"] = meta
    return out


def _rewrite(node: Any, key: bytes) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "reference" and isinstance(v, str) and "/" in v and not v.startswith("#"):
                parts = v.split("/")
                out[k] = f"{parts[-2]}/{pseudonym(key, f'{parts[-2]}/{parts[-1]}')}"
            elif k == "display":
                continue  # displays of references carry names
            else:
                out[k] = _rewrite(v, key)
        return out
    if isinstance(node, list):
        return [_rewrite(v, key) for v in node]
    return node

"""Security labels on the way in: the policies say which sensitive classes a resource
belongs to, and the labels are written into its ``meta.security``."""

from typing import Any

from exchange.decisions.decide import Decider


def label(decider: Decider, resource: dict[str, Any]) -> dict[str, Any]:
    """Add the security labels the policies give this resource (sensitive classes)."""
    labels = decider.labels_for(resource)
    if not labels:
        return resource
    meta = dict(resource.get("meta") or {})
    security = list(meta.get("security") or [])
    for item in labels:
        if not any(s.get("system") == item["system"] and s.get("code") == item["code"]
                   for s in security):
            security.append(item)
    meta["security"] = security
    return {**resource, "meta": meta}

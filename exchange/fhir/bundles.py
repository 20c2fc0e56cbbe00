"""Transaction and batch Bundles: what each entry asks, with ``urn:uuid`` references
resolved to the ids the server assigns."""

from collections.abc import Callable
from typing import Any

from exchange.errors import InvalidResource

Planned = tuple[str, str, str, str, Any]  # where, action, type, id, resource


def plan_entries(entries: list[Any], new_id: Callable[[], str],
                 offset: int = 0) -> list[Planned]:
    """(where, action, type, id, resource) for each entry, urn:uuid references resolved."""
    ids: dict[str, str] = {}
    planned: list[Planned] = []
    for index, entry in enumerate(entries, start=offset):
        where = f"Bundle.entry[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
            raise InvalidResource("Each entry needs a request.", expression=[f"{where}.request"])
        method = entry["request"].get("method")
        url = str(entry["request"].get("url") or "")
        resource = entry.get("resource")
        if method == "POST":
            rtype = url.strip("/").split("?")[0]
            rid = new_id()
            full_url = entry.get("fullUrl")
            if isinstance(full_url, str) and full_url.startswith("urn:uuid:"):
                ids[full_url] = f"{rtype}/{rid}"
            planned.append((f"{where}.resource", "create", rtype, rid, resource))
        elif method in ("PUT", "DELETE"):
            parts = url.strip("/").split("/")
            if len(parts) != 2:
                raise InvalidResource("The entry's request.url must be Type/id.",
                                      expression=[f"{where}.request.url"])
            action = "update" if method == "PUT" else "delete"
            planned.append((f"{where}.resource", action, parts[0], parts[1],
                            resource if method == "PUT" else None))
        else:
            raise InvalidResource("Entries may POST, PUT or DELETE.",
                                  expression=[f"{where}.request.method"])
    if ids:
        planned = [(w, a, t, i, resolve_references(r, ids)) for w, a, t, i, r in planned]
    return planned


def resolve_references(node: Any, ids: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: (ids.get(v, v) if k == "reference" and isinstance(v, str)
                    else resolve_references(v, ids)) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_references(v, ids) for v in node]
    return node

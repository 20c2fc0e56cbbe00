"""Transaction and batch Bundles: what each entry asks, with ``urn:uuid`` references
resolved to the ids the server assigns."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from exchange.errors import BrokenInvariant, InvalidResource
from exchange.fhir.ids import check_id, parse_version

# where, action, type, id, resource; a GET entry is (where, "get", "", "", its url)
Planned = tuple[str, str, str, str, Any]

# Conditions an entry may set that the exchange does not honour in a Bundle: refused
# rather than ignored, since ignoring one would write what the client meant to avoid.
# (``ifNoneExist`` is honoured: the gate matches it first and passes ``matched``.)
_UNHONOURED = ("ifNoneMatch", "ifModifiedSince")


@dataclass(frozen=True)
class ReadTarget:
    """What a GET entry asks: a read, a vread or a search."""

    kind: str  # "read", "vread" or "search"
    resource_type: str
    resource_id: str = ""
    version: int | None = None
    pairs: tuple[tuple[str, str], ...] = ()


def read_target(url: str, where: str) -> ReadTarget:
    """``Type/id``, ``Type/id/_history/vid``, ``Type?query`` or ``Type``; else a 422
    naming the entry (other reads, such as history or operations, are not answered in a
    Bundle)."""
    path, _, query = url.strip("/").partition("?")
    parts = path.split("/")
    if len(parts) == 1 and parts[0]:
        return ReadTarget("search", parts[0],
                          pairs=tuple(parse_qsl(query, keep_blank_values=True)))
    if not query and len(parts) == 2:
        check_id(parts[1])
        return ReadTarget("read", parts[0], parts[1])
    if not query and len(parts) == 4 and parts[2] == "_history":
        check_id(parts[1])
        return ReadTarget("vread", parts[0], parts[1], parse_version(parts[3]))
    raise InvalidResource("A GET entry reads Type/id, Type/id/_history/vid or searches "
                          "Type?query.", expression=[where])


def plan_entries(entries: list[Any], new_id: Callable[[], str], offset: int = 0,
                 matched: dict[int, str] | None = None) -> list[Planned]:
    """(where, action, type, id, resource) for each entry, urn:uuid references resolved.
    ``matched`` names, by entry index, the resource a conditional entry's criteria found
    (``ifNoneExist`` on a POST, or ``PUT``/``DELETE Type?criteria``), the gate having
    matched them first. A conditional create that found one creates nothing ("match");
    a conditional update updates what it found, and creates when nothing was found; a
    conditional delete deletes what it found, and does nothing ("none") when nothing
    was. References to the ``fullUrl`` of a create or an update point at its resource."""
    matched = matched or {}
    ids: dict[str, str] = {}
    planned: list[Planned] = []
    for index, entry in enumerate(entries, start=offset):
        where = f"Bundle.entry[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
            raise InvalidResource("Each entry needs a request.", expression=[f"{where}.request"])
        method = entry["request"].get("method")
        url = str(entry["request"].get("url") or "")
        resource = entry.get("resource")
        for condition in _UNHONOURED:
            if entry["request"].get(condition) is not None:
                raise InvalidResource(f"request.{condition} is not supported in a Bundle; "
                                      "send the entry as its own request.",
                                      expression=[f"{where}.request.{condition}"])
        if method == "GET":
            planned.append((f"{where}.request.url", "get", "", "", url))
        elif method == "POST":
            rtype = url.strip("/").split("?")[0]
            found = matched.get(index)
            rid = found.split("/", 1)[1] if found else new_id()
            full_url = entry.get("fullUrl")
            if isinstance(full_url, str) and full_url.startswith("urn:uuid:"):
                ids[full_url] = f"{rtype}/{rid}"
            planned.append((f"{where}.resource", "match" if found else "create", rtype, rid,
                            resource))
        elif entry["request"].get("ifNoneExist") is not None:
            raise InvalidResource("request.ifNoneExist conditions a create (POST) only.",
                                  expression=[f"{where}.request.ifNoneExist"])
        elif method in ("PUT", "DELETE"):
            action = "update" if method == "PUT" else "delete"
            target = conditional_target(url, where)
            if target is not None:  # Type?criteria: what the gate matched, if anything
                rtype = target[0]
                found = matched.get(index)
                if found:
                    rid = found.split("/", 1)[1]
                elif method == "PUT":
                    action, rid = "create", new_id()
                else:
                    action, rid = "none", ""
            else:
                parts = url.strip("/").split("/")
                if len(parts) != 2:
                    raise InvalidResource("The entry's request.url must be Type/id or "
                                          "Type?criteria.",
                                          expression=[f"{where}.request.url"])
                rtype, rid = parts
            full_url = entry.get("fullUrl")
            if method == "PUT" and isinstance(full_url, str) \
                    and full_url.startswith("urn:uuid:"):
                ids[full_url] = f"{rtype}/{rid}"
            planned.append((f"{where}.resource", action, rtype, rid,
                            resource if method == "PUT" else None))
        else:
            raise InvalidResource("Entries may GET, POST, PUT or DELETE.",
                                  expression=[f"{where}.request.method"])
    if ids:
        planned = [(w, a, t, i, resolve_references(r, ids)) for w, a, t, i, r in planned]
    for where, action, _, _, resource in planned:
        if action != "get" and _dangling(resource):
            # Stored as written, it would point at nothing forever (R4: every urn:uuid a
            # transaction's resources use is the fullUrl of one of its entries).
            raise BrokenInvariant("A urn:uuid reference names no entry of this Bundle.",
                                  expression=[where])
    return planned


def check_full_urls(entries: list[Any]) -> None:
    """R4's bdl-7: a Bundle's fullUrls are unique. Two entries with one fullUrl leave a
    reference to it meaning either; the whole Bundle is refused."""
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        full_url = entry.get("fullUrl") if isinstance(entry, dict) else None
        if not isinstance(full_url, str):
            continue
        if full_url in seen:
            raise BrokenInvariant("Two entries of the Bundle have one fullUrl.",
                                  expression=[f"Bundle.entry[{index}].fullUrl"])
        seen.add(full_url)


def _dangling(node: Any) -> bool:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref.startswith("urn:uuid:"):
            return True
        return any(_dangling(v) for v in node.values() if isinstance(v, (dict, list)))
    if isinstance(node, list):
        return any(_dangling(v) for v in node)
    return False


def conditional_target(url: str, where: str) -> tuple[str, str] | None:
    """The type and criteria of a conditional update or delete entry (``Type?criteria``),
    or None for one that names its resource (``Type/id``)."""
    path, sep, criteria = url.strip("/").partition("?")
    if not sep:
        return None
    if not path or "/" in path:
        raise InvalidResource("A conditional entry's request.url is Type?criteria.",
                              expression=[f"{where}.request.url"])
    return path, criteria


def resolve_references(node: Any, ids: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: (ids.get(v, v) if k == "reference" and isinstance(v, str)
                    else resolve_references(v, ids)) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_references(v, ids) for v in node]
    return node

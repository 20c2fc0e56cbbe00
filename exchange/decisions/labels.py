"""Security labels on the way in: the policies say which sensitive classes a resource
belongs to, from its own codes (``label``) and from the labelled records of the same
resident it points at (``reach``, ``reach_within``), and the labels are written into its
``meta.security``, where every guard on the way out withholds by them.

Which labels reach a record through which pointer is the policy's
(``policies/exchange/labels/dependents``); here are the pointers and the bookkeeping.
"""

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from exchange.decisions.decide import Decider
from exchange.fhir.references import LocalBases
from exchange.store.indexing import compartment_of

Label = dict[str, str]  # {"system", "code"}
Pointer = tuple[str, str]  # (path of element names, "Type/id" of a local record)
# What is known of a record pointed at: its resident and its security labels.
Known = tuple[str | None, list[Label]]
# Where the records a write does not hold are looked up, all at once.
Lookup = Callable[[Collection[str]], Mapping[str, Known]]

# Where a resource holds no pointer that tells about its content.
_UNPOINTED = frozenset({"meta", "text"})


def label(decider: Decider, resource: dict[str, Any]) -> dict[str, Any]:
    """Add the security labels the policies give this resource (sensitive classes)."""
    return with_labels(resource, decider.labels_for(resource))


def with_labels(resource: dict[str, Any], labels: Sequence[Label]) -> dict[str, Any]:
    """The resource with these labels in its ``meta.security`` too; the very object when
    it has them all already, so that a caller can tell that nothing changed."""
    security = list((resource.get("meta") or {}).get("security") or [])
    have = {(s.get("system"), s.get("code")) for s in security if isinstance(s, dict)}
    added = [dict(item) for item in labels if (item["system"], item["code"]) not in have]
    if not added:
        return resource
    meta = dict(resource.get("meta") or {})
    meta["security"] = security + added
    return {**resource, "meta": meta}


def security(resource: dict[str, Any]) -> list[Label]:
    """A resource's security labels as the policies compare them: system and code."""
    found = []
    for item in (resource.get("meta") or {}).get("security") or []:
        if isinstance(item, dict) and isinstance(item.get("system"), str) \
                and isinstance(item.get("code"), str):
            found.append({"system": item["system"], "code": item["code"]})
    return found


def pointers(resource: dict[str, Any], here: LocalBases) -> list[Pointer]:
    """Every local record the resource points at, with the path of element names its
    Reference sits at (``claim``, ``evidence.detail``), each once; never itself. The
    pointers of a contained resource are the resource's own (``contained.subject``)."""
    own = f"{resource.get('resourceType')}/{resource.get('id')}"
    found = dict.fromkeys(p for key, value in resource.items() if key not in _UNPOINTED
                          for p in _walk(value, key, here))
    return [p for p in found if p[1] != own]


def _walk(node: Any, path: str, here: LocalBases) -> Iterator[Pointer]:
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, path, here)
    elif isinstance(node, dict):
        target = here.local(node.get("reference"))
        if target is not None:
            yield path, target
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                yield from _walk(value, f"{path}.{key}", here)


def reach(decider: Decider, resource: dict[str, Any],
          pointed: Sequence[tuple[Pointer, list[Label]]]) -> dict[str, Any]:
    """The resource with the labels that reach it, by the policy, from the labelled
    records of its own resident that it points at (each pointer with its target's
    labels); the very object when none adds anything."""
    if not pointed:
        return resource
    asked = [{"path": path, "target_type": target.split("/", 1)[0], "labels": labels}
             for (path, target), labels in pointed]
    return with_labels(resource, decider.reach_labels(str(resource.get("resourceType")),
                                                      asked))


def reach_within(decider: Decider, records: Mapping[str, tuple[str | None, dict[str, Any]]],
                 known: Lookup, here: LocalBases) -> dict[str, dict[str, Any]]:
    """The labels that reach each of ``records`` (``Type/id`` -> its resident and body:
    what one write or one load holds), from each other and from the records ``known``
    finds, which it is asked for once. The records point at each other (a transaction's
    Provenance at its ExplanationOfBenefit at its Claim), in any order and in cycles: the
    labels are passed on until none moves, which they stop doing since they only grow.
    A record of no resident (the directory) takes none."""
    bodies = {ref: body for ref, (_, body) in records.items()}
    found = {ref: pointers(body, here) for ref, body in bodies.items()}
    outside = known({t for ps in found.values() for _, t in ps if t not in records})

    def labels_of(target: str) -> Known | None:
        if target in records:
            return records[target][0], security(bodies[target])
        return outside.get(target)

    for _ in range(len(records) + 1):
        moved = False
        for ref, (owner, _) in records.items():
            if owner is None:
                continue
            pointed = [(pointer, seen[1]) for pointer in found[ref]
                       if (seen := labels_of(pointer[1])) is not None
                       and seen[0] == owner and seen[1]]
            after = reach(decider, bodies[ref], pointed)
            if after is not bodies[ref]:
                bodies[ref], moved = after, True
        if not moved:
            break
    return bodies


def label_records(decider: Decider, resources: Sequence[dict[str, Any]],
                  here: LocalBases) -> list[dict[str, Any]]:
    """Label records loaded together (a community's seed, by ``ingest``), from their own
    codes and from each other, as writes through the gate would be: the records they
    point at are among them or not yet stored."""
    labelled = [label(decider, r) for r in resources]
    records = {f"{r['resourceType']}/{r['id']}": (compartment_of(r, here), r)
               for r in labelled}
    settled = reach_within(decider, records, lambda _targets: {}, here)
    return [settled[f"{r['resourceType']}/{r['id']}"] for r in labelled]

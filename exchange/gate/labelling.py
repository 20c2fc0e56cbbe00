"""The labels that reach a record from the records it points at, settled whenever either
is written (which, and through which pointer: ``policies/exchange/labels/dependents``).

An ExplanationOfBenefit of a Claim the policies withhold names that Claim: released, it
tells the insurer which residents have a claim it may not see, and for what. So the EOB
carries the Claim's labels, and is withheld wherever the Claim is.

Settled on the way in, not on the way out: a label on the record itself is what every
guard already withholds by (in SQL before counting and paging, on reads and versions,
history, includes, chains, reverse chains and conditional matches), so no guard needs to
know about pointers, and none can forget them. The order of writes does not matter:

- a write settles the records it writes, from the labelled records of the same resident
  they point at, among its own (a transaction's entries point at each other) or stored;
- a stored record that points at one whose labels grew (a Claim coded as depression
  after its EOB was written, or a Claim written after an EOB that named its id) gains
  them too, as a new version written in the same transaction as the write that caused
  it and named by the same audit entry, and so on to the records that point at it.

Labels only grow here: a Claim corrected to a code that is not sensitive leaves its EOB
withheld until the EOB itself is written again, and read afresh (the safe side).
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson

from exchange.decisions.labels import Known, pointers, reach, reach_within, security
from exchange.errors import Conflict
from exchange.gate.road import Road
from exchange.store.dependents import pointing_at
from exchange.store.repository import StoredResource, Write

# The most stored records one write may relabel; more is refused (and nothing stored),
# rather than held in one transaction without bound.
RELABEL_LIMIT = 10_000


class Labelling:
    def __init__(self, road: Road) -> None:
        self._repository = road.repository
        self._decider = road.deciding.decider
        self._here = road.here

    def settle(self, writes: Sequence[Write]) -> tuple[list[Write], list[Write]]:
        """The writes, each with the labels that reach it; and the stored records they
        relabel, as updates to apply with them."""
        records = {_ref(w): (w.owner(self._here), {**w.resource, "id": w.resource_id})
                   for w in writes if w.resource is not None}
        bodies = reach_within(self._decider, records, self._stored, self._here)
        settled = [replace(w, resource=bodies[_ref(w)]) if w.resource is not None else w
                   for w in writes]
        owners = {ref: owner for ref, (owner, _) in records.items()}
        carrying = {ref for ref, body in bodies.items() if security(body)}
        relabelled = self._relabel(carrying, owners, bodies, {_ref(w) for w in writes})
        return settled, [Write("update", row.resource_type, row.resource_id, body,
                               row.patient_id, row.holder) for row, body in relabelled.values()]

    def _relabel(self, carrying: set[str], owners: Mapping[str, str | None],
                 written: Mapping[str, dict[str, Any]],
                 untouched: Collection[str]) -> dict[str, tuple[StoredResource, dict[str, Any]]]:
        """The stored records (not among this write's, ``untouched``) that the labels of
        the written records ``carrying`` some now reach, directly or through one another,
        with their bodies relabelled. Those already carrying them are left as they are."""
        relabelled: dict[str, tuple[StoredResource, dict[str, Any]]] = {}
        stored: dict[str, Known] = {}

        def known(targets: Collection[str]) -> Mapping[str, Known]:
            out: dict[str, Known] = {}
            for target in targets:
                if target in written:
                    out[target] = owners.get(target), security(written[target])
                elif target in relabelled:
                    row, body = relabelled[target]
                    out[target] = row.patient_id, security(body)
            missing = [t for t in targets if t not in out and t not in stored]
            stored.update(self._stored(missing))
            out.update({t: stored[t] for t in targets if t not in out and t in stored})
            return out

        frontier = carrying
        while frontier:
            moved: set[str] = set()
            for resident, refs in _by_resident(frontier, owners, relabelled).items():
                for rtype, rid in pointing_at(self._repository.engine, refs, resident):
                    ref = f"{rtype}/{rid}"
                    if ref in untouched:
                        continue
                    if ref in relabelled:
                        row, body = relabelled[ref]
                    else:
                        current = self._repository.read(rtype, rid)
                        if current is None or current.deleted:
                            continue
                        row, body = current, orjson.loads(current.body)
                    found = pointers(body, self._here)
                    seen = known({t for _, t in found})
                    pointed = [(p, seen[p[1]][1]) for p in found if p[1] in seen
                               and seen[p[1]][0] == row.patient_id and seen[p[1]][1]]
                    after = reach(self._decider, body, pointed)
                    if after is not body:
                        relabelled[ref] = (row, after)
                        moved.add(ref)
                        if len(relabelled) > RELABEL_LIMIT:
                            raise Conflict(f"This write would relabel more than "
                                           f"{RELABEL_LIMIT} records that point at it; "
                                           "ask the operator to relabel them first.")
            frontier = moved
        return relabelled

    def _stored(self, targets: Collection[str]) -> dict[str, Known]:
        """The resident and labels of each stored record among ``targets`` that carries
        labels; only those are opened."""
        out: dict[str, Known] = {}
        for ref in sorted(self._repository.labelled(targets)):
            rtype, _, rid = ref.partition("/")
            row = self._repository.read(rtype, rid)
            if row is not None and not row.deleted:
                out[ref] = row.patient_id, security(orjson.loads(row.body))
        return out


def _ref(write: Write) -> str:
    return f"{write.resource_type}/{write.resource_id}"


def _by_resident(refs: Iterable[str], owners: Mapping[str, str | None],
                 relabelled: Mapping[str, tuple[StoredResource, dict[str, Any]]]
                 ) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for ref in sorted(refs):
        owner = relabelled[ref][0].patient_id if ref in relabelled else owners.get(ref)
        if owner is not None:
            grouped.setdefault(owner, []).append(ref)
    return grouped

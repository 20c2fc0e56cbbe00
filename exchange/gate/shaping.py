"""The road's shape phase (HAPI's ``willSeeResource``): withhold, minimize, then apply the
decision's de-identification profile; for a guarded Patient search, judge the whole
population with the k-anonymity guard first."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson

from exchange.decisions.decide import Decision
from exchange.errors import InvalidSearch, NotFound
from exchange.fhir.search import SearchQuery
from exchange.identity.model import Identity
from exchange.ports import Clock, KeyProvider
from exchange.privacy.disclosure import Shaper, domain_keys, domain_of
from exchange.privacy.profiles import Profile
from exchange.privacy.shaping import keep_fields, withheld
from exchange.store.repository import ResourceRepository, StoredResource

# The most matches a k-anonymity guard judges at once (it reads every one).
GUARD_LIMIT = 20_000

Shapers = dict[str, Shaper]  # one response's disclosures (and their k-anonymity verdicts)


class Shaping:
    def __init__(self, repository: ResourceRepository, keys: KeyProvider, clock: Clock,
                 profiles: Mapping[str, Profile]) -> None:
        self.profiles = dict(profiles)
        self._repository = repository
        self._keys = keys
        self._clock = clock

    def shape(self, row: StoredResource, decision: Decision, who: Identity,
              elements: Sequence[str] | None = None,
              shapers: Shapers | None = None) -> dict[str, Any] | None:
        """The resource as this recipient may see it, or None if it is withheld."""
        resource: dict[str, Any] = orjson.loads(row.body)
        if withheld(resource, decision.withhold_labels) or not decision.admits(resource):
            return None
        resource = minimize(resource, decision, row.resource_type, elements)
        disclosure = self.disclosure(who, decision, {} if shapers is None else shapers)
        if disclosure.guarded and disclosure.verdict is None and row.resource_type == "Patient":
            # A Patient alone is its own population: the guard decides on it alone.
            disclosure.judge({str(row.patient_id): resource}, lambda p: p)
        return disclosure.shape(resource, row.patient_id)

    def visible(self, row: StoredResource, decision: Decision) -> bool:
        """Whether the decision lets this resource be seen at all (its type, its labels,
        its categories): what a read would not show, a write may not touch."""
        resource: dict[str, Any] = orjson.loads(row.body)
        return decision.allows(row.resource_type) and not withheld(
            resource, decision.withhold_labels) and decision.admits(resource)

    def by_real_id(self, who: Identity, decision: Decision) -> bool:
        """Whether the caller may ask for a record by its real id. A recipient of
        pseudonymized records knows them only by pseudonyms: a read by a real id that it
        learnt elsewhere would link that id to the pseudonym, and its 200 or 404 would
        tell whether the resident consented to it. So it is answered as missing."""
        return self.disclosure(who, decision, {}).profile.passes_through

    def hides_current(self, rtype: str, rid: str, decision: Decision | None) -> bool:
        """Whether the resource as it is now is hidden from the caller (``decision`` is the
        one on its current resident). Then none of its versions is shown either: an old,
        unlabelled version of a record since labelled, or moved to someone the caller may
        not see, would prove the hidden record exists. A deletion hides nothing here; it is
        disclosed as its own version is."""
        current = self._repository.read(rtype, rid)
        if current is None or current.deleted:
            return False
        return decision is None or not self.visible(current, decision)

    def disclosure(self, who: Identity, decision: Decision, shapers: Shapers) -> Shaper:
        """The shaper of the decision's profile in this recipient's pseudonym domain."""
        if decision.profile not in shapers:
            profile = self.profiles.get(decision.profile)
            if profile is None:
                raise NotFound()  # a profile this exchange does not have: never disclose raw
            hash_key, siv_key = domain_keys(self._keys, domain_of(who.organization,
                                                                  who.purpose))
            shapers[decision.profile] = Shaper(profile, hash_key, siv_key,
                                               self._patient_record,
                                               self._clock.now().date())
        return shapers[decision.profile]

    def _patient_record(self, resident: str) -> dict[str, Any] | None:
        row = self._repository.read("Patient", resident)
        return None if row is None or row.deleted else orjson.loads(row.body)

    def guarded_search(self, who: Identity, query: SearchQuery, allowed: set[str],
                       labels: list[dict[str, Any]], classes: dict[str, Any],
                       decisions: Mapping[str | None, Decision],
                       shapers: Shapers) -> tuple[int, list[StoredResource]]:
        """A Patient search under a k-anonymity guard: the population is every match,
        not the page, so the guard sees what the recipient could page through."""
        everything = replace(query, offset=0, count=GUARD_LIMIT + 1, summary_count=False)
        _, rows = self._repository.search(everything, allowed, labels, classes,
                                          neutral_order=True)
        if len(rows) > GUARD_LIMIT:
            raise InvalidSearch(f"A pseudonymized search may match at most {GUARD_LIMIT} "
                                "residents; narrow it.")
        suppressed = self.judge(who, rows, decisions, shapers, query.elements)
        kept = [row for row in rows if row.patient_id not in suppressed]
        if query.summary_count or query.count == 0:
            return len(kept), []
        return len(kept), kept[query.offset:query.offset + query.count]

    def judge(self, who: Identity, rows: Sequence[StoredResource],
              decisions: Mapping[str | None, Decision], shapers: Shapers,
              elements: Sequence[str] | None = None) -> set[str | None]:
        """Run the k-anonymity guard over the Patients among ``rows``, one population per
        profile; returns the residents it suppressed."""
        groups: dict[str, dict[str, dict[str, Any]]] = {}
        for row in rows:
            decision = decisions.get(row.patient_id)
            if row.resource_type != "Patient" or decision is None or row.patient_id is None:
                continue
            disclosure = self.disclosure(who, decision, shapers)
            if disclosure.guarded:
                resource = orjson.loads(row.body)
                if not withheld(resource, decision.withhold_labels):
                    groups.setdefault(decision.profile, {})[row.patient_id] = minimize(
                        resource, decision, "Patient", elements)
        suppressed: set[str | None] = set()
        for name, patients in groups.items():
            verdict = shapers[name].judge(patients, lambda p: p)
            if verdict is not None:
                suppressed |= verdict.suppressed
        return suppressed


def minimize(resource: dict[str, Any], decision: Decision, rtype: str,
             elements: Sequence[str] | None) -> dict[str, Any]:
    """Keep the fields the purpose allows, then those the caller asked for."""
    resource = keep_fields(resource, decision.types.get(rtype, []))
    return keep_fields(resource, elements) if elements else resource


def union_labels(decisions: Iterable[Decision]) -> list[dict[str, Any]]:
    """Every security label any of the decisions withholds, once."""
    labels: list[dict[str, Any]] = []
    for d in decisions:
        for item in d.withhold_labels:
            if item not in labels:
                labels.append(item)
    return labels

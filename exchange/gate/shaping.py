"""The road's shape phase (HAPI's ``willSeeResource``): withhold, minimize, then apply the
decision's de-identification profile.

Under a profile with a k-anonymity guard, the guard judges the recipient's whole
population first: every resident whose Patient this recipient may see under that profile,
shaped exactly as it leaves (never narrowed by the caller's ``_elements``, with the facts
the profile derives on it). Its verdict is the same whatever the query, the type or the
page, so a resident it suppresses is suppressed in every type (their Observations do not
leave under a pseudonym the Patient list withholds), a search cannot make a class smaller
by narrowing the population, and a resident the guard did not judge does not leave."""

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from exchange.decisions.decide import Decider, Decision
from exchange.errors import InvalidSearch, NotFound
from exchange.fhir.search import parse_search
from exchange.identity.model import Identity
from exchange.ports import Clock, KeyProvider
from exchange.privacy.derived import derive
from exchange.privacy.disclosure import Shaper, domain_keys, domain_of
from exchange.privacy.k_anonymity import GuardResult
from exchange.privacy.methods import pseudonym
from exchange.privacy.profiles import Profile
from exchange.privacy.shaping import keep_fields, withheld
from exchange.store.repository import ResourceRepository, StoredResource

# The largest population a k-anonymity guard judges (it reads every one).
GUARD_LIMIT = 20_000
DERIVE_LIMIT = 200_000  # the records one derived fact reads over a population
VERDICT_SECONDS = 60.0  # at most this long a verdict is reused (consent periods end)

Shapers = dict[str, Shaper]  # one response's disclosures (and their k-anonymity verdicts)


class Shaping:
    def __init__(self, repository: ResourceRepository, keys: KeyProvider, clock: Clock,
                 profiles: Mapping[str, Profile], decider: Decider) -> None:
        self.profiles = dict(profiles)
        self._repository = repository
        self._decider = decider
        # Guard verdicts (and derived facts) by everything they depend on.
        self._verdicts: dict[tuple[Any, ...], tuple[float, GuardResult,
                                                    dict[str, dict[str, list[str]]]]] = {}
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
        self.ensure_verdict(who, disclosure)
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

    def pseudonym_order(self, who: Identity, rtype: str) -> Callable[[str], str]:
        """A resource id to its pseudonym in the caller's domain: the order of a page."""
        hash_key, _ = domain_keys(self._keys, domain_of(who.organization, who.purpose))
        return lambda rid: pseudonym(hash_key, f"{rtype}/{rid}")

    def ensure_verdict(self, who: Identity, disclosure: Shaper) -> None:
        """Judge the recipient's population under a guarded profile, once per response,
        with the facts the profile derives for each resident."""
        if not disclosure.guarded or disclosure.verdict is not None:
            return
        profile = disclosure.profile
        # The verdict depends on nothing but the recipient, the profile, the policy, the
        # day, the consents and the records: reused while none of them changed.
        residents = sorted(r for r in self._repository.residents_with("Patient")
                           if r is not None)
        if len(residents) > GUARD_LIMIT:
            raise InvalidSearch(f"A pseudonymized disclosure judges at most {GUARD_LIMIT} "
                                "residents at once; this community is larger.")
        stamps = self._decider.refresh(residents)
        now = self._clock.now()
        key = (profile.name, orjson.dumps(who.policy_view(), option=orjson.OPT_SORT_KEYS),
               self._decider.revision, now.astimezone(self._repository.zone).date(),
               self._repository.generation(),
               hashlib.sha256(orjson.dumps(sorted(stamps.items()))).digest())
        cached = self._verdicts.get(key)
        if cached is not None and now.timestamp() - cached[0] < VERDICT_SECONDS:
            disclosure.verdict, disclosure.facts = cached[1], cached[2]
            return
        patients = self.population(who, profile.name, residents)
        if profile.facts:
            disclosure.facts = self.derive_facts(who, profile, sorted(patients))
        verdict = disclosure.judge(patients, lambda p: p)
        if verdict is not None:
            if len(self._verdicts) >= 64:
                self._verdicts.clear()
            self._verdicts[key] = (now.timestamp(), verdict, disclosure.facts)

    def derive_facts(self, who: Identity, profile: Profile,
                residents: Sequence[str]) -> dict[str, dict[str, list[str]]]:
        """Each resident's derived facts, read from what the decision lets the recipient
        derive from (``derive``: types it never receives as they are), without the
        labels it withholds and within the data classes it opens."""
        sources = sorted({f.source for f in profile.facts})
        decisions = {r: self._decider.decide(who, "derive", sources, r) for r in residents}
        found: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for fact in profile.facts:
            members = {r for r, d in decisions.items() if d.allows(fact.source)}
            if not members:
                continue
            query = parse_search(fact.source, fact.search, default_count=DERIVE_LIMIT + 1,
                                 max_count=DERIVE_LIMIT + 1, zone=self._repository.zone)
            classes = {r: decisions[r].categories[fact.source] for r in members
                       if fact.source in decisions[r].categories}
            total, rows = self._repository.search(
                query, members, union_labels(decisions[r] for r in members), classes)
            if total > DERIVE_LIMIT:
                raise InvalidSearch(f"Deriving {fact.name} would read more than "
                                    f"{DERIVE_LIMIT} records at once.")
            for row in rows:
                decision = decisions[str(row.patient_id)]
                resource: dict[str, Any] = orjson.loads(row.body)
                if withheld(resource, decision.withhold_labels) \
                        or not decision.admits(resource):
                    continue
                found.setdefault(str(row.patient_id), {}).setdefault(fact.name, []).append(
                    keep_fields(resource, decision.types.get(fact.source, [])))
        today = self._clock.now().astimezone(self._repository.zone).date()
        return {r: derive(profile.facts, found.get(r, {}), today) for r in residents}

    def population(self, who: Identity, profile: str,
                   residents: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Those of ``residents`` whose Patient ``who`` may see under ``profile``,
        minimized as the purpose keeps it: what the guard judges. Deciding here discloses
        nothing, so the decisions are not the operation's (its entry records the guard's
        report)."""
        patients: dict[str, dict[str, Any]] = {}
        for resident in residents:
            decision = self._decider.decide(who, "read", ["Patient"], resident)
            if not decision.allows("Patient") or decision.profile != profile:
                continue
            row = self._repository.read("Patient", resident)
            if row is None or row.deleted:
                continue
            resource: dict[str, Any] = orjson.loads(row.body)
            if withheld(resource, decision.withhold_labels) or not decision.admits(resource):
                continue
            patients[resident] = minimize(resource, decision, "Patient", None)
        return patients

    def released(self, who: Identity, decisions: Mapping[str | None, Decision],
                 residents: Iterable[str], shapers: Shapers) -> set[str]:
        """Of ``residents``, those the guards of their profiles let leave at all."""
        kept = set()
        for resident in residents:
            disclosure = self.disclosure(who, decisions[resident], shapers)
            self.ensure_verdict(who, disclosure)
            if disclosure.releases(resident):
                kept.add(resident)
        return kept


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

"""The hub's cockpit: how many residents in each zone have each need, as a FHIR
``MeasureReport`` (``GET /fhir/Measure/care-needs/$evaluate-measure``), released with
differential privacy.

On the road like any disclosure: the caller is identified; every resident is decided on
their own consents (the same population and derived facts the k-anonymity guard judges,
so a resident who did not consent is in no count); the counts are noised (``noise.py``,
OpenDP) with the epsilon the profile states; the release is recorded, with the epsilon it
spent, in the transaction that stores its answer. Asked again on the same day, the
recipient is told the same answer and spends nothing; a recipient that has spent the
day's budget is refused (429) until the next day, so noise cannot be averaged away.
"""

import hashlib
from collections import Counter
from typing import Any

import orjson

from exchange.errors import ExchangeError, Forbidden, InvalidRequest, NotFound
from exchange.gate.context import Disclosure, RequestContext
from exchange.gate.road import Road
from exchange.identity.model import Identity
from exchange.privacy.derived import FACT_SYSTEM
from exchange.privacy.disclosure import domain_of
from exchange.privacy.noise import noisy_counts
from exchange.privacy.profiles import Aggregates as Spec
from exchange.privacy.profiles import Profile

MEASURE = "care-needs"
MEASURE_URL = "https://fhir.community-exchange.example/Measure/care-needs"
EPSILON_URL = "https://fhir.community-exchange.example/StructureDefinition/dp-epsilon"
MECHANISM_URL = "https://fhir.community-exchange.example/StructureDefinition/dp-mechanism"
OTHER_ZONE = "other"


class BudgetSpent(ExchangeError):
    status = 429
    issue_type = "throttled"
    code = "privacy-budget-spent"


class Aggregates:
    def __init__(self, road: Road) -> None:
        self._road = road

    def evaluate(self, ctx: RequestContext, who: Identity, measure: str,
                 pairs: list[tuple[str, str]]) -> Disclosure:
        road = self._road
        with road.recorder.recording(ctx, who, "aggregate",
                                     {"type": "Measure", "id": measure}) as draft:
            if measure != MEASURE:
                raise NotFound()
            if any(k not in ("_pretty", "_format") for k, _ in pairs):
                raise InvalidRequest("$evaluate-measure here takes no parameters: it "
                                     "reports the community as it is today.")
            profile = self._profile(who)
            spec = profile.aggregates
            assert spec is not None
            recipient = domain_of(who.organization, who.purpose)
            now = road.clock.now().astimezone(road.zone)
            day = now.date().isoformat()
            query = f"{MEASURE}/{hashlib.sha256(orjson.dumps(spec.__dict__)).hexdigest()}"
            releases = road.repository.noisy_releases
            earlier = releases.earlier(recipient, day, query)
            if earlier is not None:
                draft.details.update({"epsilon": 0.0, "repeated": True})
                return Disclosure(200, earlier)
            if releases.spent(recipient, day) + spec.epsilon > spec.epsilon_per_day + 1e-9:
                raise BudgetSpent("Today's privacy budget for this measure is spent; "
                                  "ask again tomorrow.")
            report = self._report(who, profile, spec, day)
            body = orjson.dumps(report)
            epsilon = float(report["extension"][0]["valueDecimal"])
            releases.record(recipient, day, query, epsilon, body)
            draft.details.update({"epsilon": epsilon, "epsilon_per_day": spec.epsilon_per_day})
            return Disclosure(200, body)

    def _profile(self, who: Identity) -> Profile:
        """The profile the caller's purpose discloses under, if it has a measure."""
        road = self._road
        if who.kind != "client":
            raise Forbidden("The care-needs measure is for the hub's matching engine.")
        floor = road.deciding.decider.decide(who, "search", ["Patient"], None)
        profile = road.shaping.profiles.get(floor.search_profile)
        if profile is None or profile.aggregates is None or not profile.facts:
            raise Forbidden("This purpose receives no care-needs measure.")
        return profile

    def _report(self, who: Identity, profile: Profile, spec: Spec,
                day: str) -> dict[str, Any]:
        shaping = self._road.shaping
        residents = sorted(r for r in self._road.repository.residents_with("Patient") if r)
        population = shaping.population(who, profile.name, residents)
        facts = shaping.derive_facts(who, profile, sorted(population))
        zones = [*spec.zones, OTHER_ZONE]
        cells: list[tuple[str, str, str]] = []
        for name in spec.facts:
            fact = next(f for f in profile.facts if f.name == name)
            codes = [b.code for b in fact.bands] + ([fact.absent] if fact.absent else [])
            cells += [(name, zone, code) for zone in zones for code in codes]
        counted: Counter[tuple[str, str, str]] = Counter()
        for resident, patient in population.items():
            district = next((a.get("district") for a in patient.get("address", [])
                             if isinstance(a, dict)), None)
            zone = district if district in spec.zones else OTHER_ZONE
            for name in spec.facts:
                # one cell per fact per resident: sensitivity = the number of facts
                for code in facts.get(resident, {}).get(name, [])[:1]:
                    counted[(name, zone, code)] += 1
        noisy = noisy_counts([counted[c] for c in cells], spec.epsilon, len(spec.facts))
        groups = []
        for name in spec.facts:
            strata = [{"value": {"text": zone},
                       "component": [{"code": {"text": "value"},
                                      "value": {"coding": [{"system": FACT_SYSTEM,
                                                            "code": f"{name}/{code}"}]}}],
                       "population": [{"code": {"coding": [{
                           "system": "http://terminology.hl7.org/CodeSystem/"
                                     "measure-population", "code": "initial-population"}]},
                           "count": count}]}
                      for (fact, zone, code), count in zip(cells, noisy.counts, strict=True)
                      if fact == name]
            groups.append({"code": {"coding": [{"system": FACT_SYSTEM, "code": name}]},
                           "stratifier": [{"code": [{"text": "zone"}], "stratum": strata}]})
        return {
            "resourceType": "MeasureReport", "status": "complete", "type": "summary",
            "measure": MEASURE_URL, "date": self._road.clock.now().isoformat(),
            "period": {"start": day, "end": day},
            "extension": [{"url": EPSILON_URL, "valueDecimal": round(noisy.epsilon, 6)},
                          {"url": MECHANISM_URL, "valueString": noisy.mechanism}],
            "group": groups,
        }

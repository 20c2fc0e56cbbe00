"""The linkage adversary: recipients that hold identified data about some residents, or
pool what they receive, try to put names to pseudonyms (docs/privacy.md, threat model).

Every feed is fetched over the FHIR API with the recipient's own token, exactly as the
recipient gets it. The attacker knows the profiles (they are public policy data) and
uses, per attack:

- ``exact values``: a pseudonym's measurements that equal a known resident's exactly;
- ``time of day``: the clock times of a pseudonym's Observations;
- ``intervals``: the days between a pseudonym's successive dates, as a sequence;
- ``series``: the number of readings of each code and their mean, within a tolerance
  wider than the profile's noise (the attacker knows the noise's bounds);
- ``demographics and facts``: age band, zone, gender and the derived care facts, against
  the same computed from the identified record.

A pseudonym is *matched* when the attack leaves exactly one candidate for it and that
candidate is left for no other pseudonym: the attacker can then claim it. ``score`` counts
the claims that are right and those that are wrong, against the truth that only the
exchange knows (the pseudonyms are keyed hashes of the real ids under the recipient's
domain key). The suite (tests/privacy/test_linkage.py) asserts the bound below on the
demo community; ``python -m bench`` reports the figures.
"""

import math
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from itertools import pairwise
from typing import Any

from exchange.privacy.derived import FACT_SYSTEM, derive
from exchange.privacy.disclosure import domain_keys, domain_of
from exchange.privacy.methods import AGE_BAND, pseudonym
from exchange.privacy.profiles import Profile

# At most this share of a feed's pseudonyms may be claimed correctly by any one attack.
BOUND = 0.05

Get = Callable[[str], dict[str, Any]]  # a GET of a FHIR path, as the recipient


@dataclass
class Person:
    """What one side knows of one resident (or one pseudonym)."""

    patient: dict[str, Any] = field(default_factory=dict)
    observations: list[dict[str, Any]] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)


Feed = dict[str, Person]  # real id (identified) or pseudonym -> what is known


@dataclass(frozen=True)
class Score:
    attack: str
    pseudonyms: int
    right: int
    wrong: int
    bounded: bool = True  # False: a known residual risk, measured and stated, not bounded
    control: bool = False  # an attack on the clinics' own records: it must find them

    @property
    def share(self) -> float:
        return self.right / self.pseudonyms if self.pseudonyms else 0.0

    def line(self) -> str:
        limit = "control: found in the clear" if self.control else \
            f"bound {100 * BOUND:.0f}%" if self.bounded else "residual (docs/privacy.md)"
        return (f"  {self.attack:<50} {self.right:4d} of {self.pseudonyms:4d} matched "
                f"({100 * self.share:5.1f}%), {self.wrong:3d} wrong   {limit}")


def fetch(get: Get, types: Iterable[str]) -> Feed:
    """Every resource of ``types`` the recipient may page through, by resident."""
    feed: Feed = defaultdict(Person)
    for rtype in types:
        url: str | None = f"{rtype}?_count=500"
        while url:
            bundle = get(url)
            for entry in bundle.get("entry", []):
                if entry.get("search", {}).get("mode") != "match":
                    continue
                resource = entry["resource"]
                if rtype == "Patient":
                    feed[resource["id"]].patient = resource
                    continue
                ref = (resource.get("subject") or resource.get("patient") or {}).get(
                    "reference", "")
                who = ref.rsplit("/", 1)[-1]
                if rtype == "Observation":
                    feed[who].observations.append(resource)
                else:
                    feed[who].conditions.append(resource)
            url = next((link["url"].split("/fhir/", 1)[1] for link in bundle.get("link", [])
                        if link["relation"] == "next"), None)
    return dict(feed)


def truth(keys: Any, organization: str, purpose: str, residents: Iterable[str]
          ) -> dict[str, str]:
    """Pseudonym -> real id, as only the exchange can compute it."""
    hash_key, _ = domain_keys(keys, domain_of(organization, purpose))
    return {pseudonym(hash_key, f"Patient/{r}"): r for r in residents}


# -- attacks: each gives, per pseudonym, the known residents it could be ----------------

Candidates = dict[str, set[str]]


def _values(person: Person) -> Counter[tuple[str, float]]:
    out: Counter[tuple[str, float]] = Counter()
    for obs in person.observations:
        code = _code(obs)
        for value in _numbers(obs):
            out[(code, value)] += 1
    return out


def by_exact_values(feed: Feed, known: Feed) -> Candidates:
    mine = {r: _values(p) for r, p in known.items()}
    out: Candidates = {}
    for pid, person in feed.items():
        theirs = _values(person)
        if len(theirs) < 3:
            out[pid] = set()
            continue
        total = sum(theirs.values())
        out[pid] = {r for r, values in mine.items()
                    if sum((theirs & values).values()) >= 0.5 * total}
    return out


def _times(person: Person) -> Counter[str]:
    return Counter(t[11:16] for obs in person.observations
                   if isinstance(t := obs.get("effectiveDateTime"), str) and len(t) > 16)


def by_time_of_day(feed: Feed, known: Feed) -> Candidates:
    mine = {r: _times(p) for r, p in known.items()}
    out: Candidates = {}
    for pid, person in feed.items():
        theirs = _times(person)
        total = sum(theirs.values())
        out[pid] = set() if total < 3 else {
            r for r, times in mine.items() if sum((theirs & times).values()) >= 0.8 * total}
    return out


def _intervals(person: Person) -> tuple[int, ...]:
    days = sorted({date.fromisoformat(t[:10]) for obs in person.observations
                   if isinstance(t := obs.get("effectiveDateTime"), str) and len(t) >= 10})
    return tuple((b - a).days for a, b in pairwise(days))


def by_intervals(feed: Feed, known: Feed) -> Candidates:
    mine = {r: _intervals(p) for r, p in known.items()}
    out: Candidates = {}
    for pid, person in feed.items():
        theirs = _intervals(person)
        if len(theirs) < 4:
            out[pid] = set()
            continue
        window = theirs[:6]
        out[pid] = {r for r, seq in mine.items() if _contains(seq, window)}
    return out


def _contains(seq: tuple[int, ...], window: tuple[int, ...]) -> bool:
    n = len(window)
    return any(seq[i:i + n] == window for i in range(len(seq) - n + 1))


def _series(person: Person) -> dict[str, tuple[int, float]]:
    by_code: dict[str, list[float]] = defaultdict(list)
    for obs in person.observations:
        numbers = _numbers(obs)
        if numbers:
            by_code[_code(obs)].append(numbers[0])
    return {c: (len(v), statistics.fmean(v)) for c, v in by_code.items()}


def by_series(feed: Feed, known: Feed, tolerance: float) -> Candidates:
    """Counts of readings per code equal, means within ``tolerance`` (relative)."""
    mine = {r: _series(p) for r, p in known.items()}
    out: Candidates = {}
    for pid, person in feed.items():
        theirs = _series(person)
        if not theirs:
            out[pid] = set()
            continue
        out[pid] = {r for r, series in mine.items()
                    if series.keys() == theirs.keys() and all(
                        series[c][0] == n and abs(series[c][1] - m) <= tolerance * abs(m)
                        for c, (n, m) in theirs.items())}
    return out


def by_nearest_series(feed: Feed, known: Feed) -> Candidates:
    """The known resident whose per-code means are nearest (relative distance, readings
    counted alike within one), claimed when it is at most half as far as the next."""
    mine = {r: _series(p) for r, p in known.items()}
    out: Candidates = {}
    for pid, person in feed.items():
        theirs = _series(person)
        ranked = sorted(
            (math.sqrt(statistics.fmean(((series[c][1] - m) / m) ** 2
                                        for c, (n, m) in theirs.items())), r)
            for r, series in mine.items()
            if theirs and series.keys() == theirs.keys() and all(
                abs(series[c][0] - n) <= 1 and m for c, (n, m) in theirs.items()))
        if len(ranked) >= 2 and ranked[0][0] <= 0.5 * ranked[1][0]:
            out[pid] = {ranked[0][1]}
        else:
            out[pid] = set()
    return out


def _trend(person: Person, code: str) -> list[float]:
    dated = sorted((str(o.get("effectiveDateTime")), _numbers(o)[0])
                   for o in person.observations if _code(o) == code and _numbers(o))
    return [v for _, v in dated]


def by_trend(feed: Feed, known: Feed, code: str = "http://loinc.org|29463-7") -> Candidates:
    """The shape of one series over time (body weight drifts differently for everyone):
    the known resident whose readings, in date order, correlate best; claimed when the
    next best is clearly worse."""
    mine = {r: _trend(p, code) for r, p in known.items()}
    out: Candidates = {}
    for pid, person in feed.items():
        theirs = _trend(person, code)
        ranked = []
        for r, seq in mine.items():
            n = min(len(seq), len(theirs))
            if n >= 8 and abs(len(seq) - len(theirs)) <= 1:
                a, b = theirs[-n:], seq[-n:]
                if len(set(a)) > 1 and len(set(b)) > 1:
                    ranked.append((statistics.correlation(a, b), r))
        ranked.sort(reverse=True)
        out[pid] = {ranked[0][1]} if len(ranked) >= 2 and ranked[0][0] > 0.8 \
            and ranked[0][0] - ranked[1][0] > 0.1 else set()
    return out


SERIES_CODES = ("http://loinc.org|29463-7", "http://loinc.org|15074-8",
                "http://loinc.org|8867-4", "http://loinc.org|85354-9")


def by_trends(feed: Feed, known: Feed, top: float = 0.4, margin: float = 0.15) -> Candidates:
    """Every series at once: the mean of the per-code correlations, claimed when the best
    known resident is clearly ahead of the next (``top``, ``margin``; with both 0 the
    attacker always names its best guess)."""
    mine = {r: {c: _trend(p, c) for c in SERIES_CODES} for r, p in known.items()}
    out: Candidates = {}
    for pid, person in feed.items():
        theirs = {c: _trend(person, c) for c in SERIES_CODES}
        ranked = []
        for r, series in mine.items():
            scores = []
            for c, a in theirs.items():
                b = series[c]
                n = min(len(a), len(b))
                if n >= 8 and abs(len(a) - len(b)) <= 1 and len(set(a[-n:])) > 1 \
                        and len(set(b[-n:])) > 1:
                    scores.append(statistics.correlation(a[-n:], b[-n:]))
            if len(scores) >= 2:
                ranked.append((statistics.fmean(scores), r))
        ranked.sort(reverse=True)
        out[pid] = {ranked[0][1]} if len(ranked) >= 2 and ranked[0][0] > top \
            and ranked[0][0] - ranked[1][0] >= margin else set()
    return out


def _diagnoses(person: Person) -> frozenset[str]:
    return frozenset(_code(c) for c in person.conditions)


def by_diagnoses(feed: Feed, known: Feed) -> Candidates:
    """The set of a pseudonym's diagnosis codes, equal to a known resident's."""
    mine = {r: _diagnoses(p) for r, p in known.items()}
    out: Candidates = {}
    for pid, person in feed.items():
        theirs = _diagnoses(person)
        out[pid] = {r for r, codes in mine.items() if codes == theirs} if theirs else set()
    return out


def by_demographics(feed: Feed, known: Feed, today: date, profile: Profile | None = None,
                    sources: frozenset[str] = frozenset()) -> Candidates:
    """Age band, zone, gender and (with ``profile``) the derived facts on the released
    Patient, against the same computed from each known resident's record: identified, or
    another recipient's pseudonymous one (then its age band, not a birth date). Facts are
    computed only from the types in ``sources``, the ones the attacker holds."""
    facts = {r: _facts(profile, p, today, sources) for r, p in known.items()} \
        if profile else {}
    out: Candidates = {}
    for pid, person in feed.items():
        released = person.patient
        if not released:
            out[pid] = set()
            continue
        out[pid] = {r for r, p in known.items() if p.patient and _consistent(
            released, p.patient, facts.get(r), today)}
    return out


def _facts(profile: Profile, person: Person, today: date,
           sources: frozenset[str]) -> dict[str, list[str]]:
    facts = tuple(f for f in profile.facts if f.source in sources)
    found: dict[str, list[dict[str, Any]]] = {}
    for fact in facts:
        pool = person.conditions if fact.source == "Condition" else person.observations
        wanted = dict(fact.search)
        found[fact.name] = [r for r in pool if _wanted(r, wanted)]
    return derive(facts, found, today)


def _wanted(resource: dict[str, Any], search: Mapping[str, str]) -> bool:
    code = search.get("code")
    if code is not None:
        return _code(resource) == code
    status = search.get("clinical-status")
    if status is not None:
        codings = (resource.get("clinicalStatus") or {}).get("coding") or [{}]
        return codings[0].get("code") == status
    return True


def _consistent(released: dict[str, Any], real: dict[str, Any],
                facts: dict[str, list[str]] | None, today: date) -> bool:
    gender = released.get("gender")
    gender_known = real.get("gender")
    if gender not in (None, "unknown") and gender_known not in (None, "unknown") \
            and gender != gender_known:
        return False
    theirs = _age_range(real, today)
    for band in (e for e in released.get("extension", []) if e.get("url") == AGE_BAND):
        low = band["valueRange"]["low"]["value"]
        high = band["valueRange"].get("high", {}).get("value", 200)
        if theirs is not None and (theirs[1] < low or theirs[0] > high):
            return False
    for zone in released.get("address", [])[:1]:
        mine = (real.get("address") or [{}])[0]
        if any(zone[k] != mine[k] for k in ("district", "city") if k in zone and k in mine):
            return False
    if facts is not None:
        for ext in released.get("extension", []):
            coding = ext.get("valueCoding") or {}
            if coding.get("system") == FACT_SYSTEM:
                name, _, value = str(coding.get("code")).partition("/")
                if name in facts and value not in facts[name]:
                    return False
    return True


def _age_range(patient: dict[str, Any], today: date) -> tuple[int, int] | None:
    """A known resident's age (an identified birth date), or a pseudonymous one's band."""
    birth = patient.get("birthDate")
    if isinstance(birth, str) and len(birth) >= 4:
        age = today.year - int(birth[:4])
        return age, age
    for band in (e for e in patient.get("extension", []) if e.get("url") == AGE_BAND):
        return (band["valueRange"]["low"]["value"],
                band["valueRange"].get("high", {}).get("value", 200))
    return None


# -- pooling: two pseudonymous feeds joined -----------------------------------------------

def join(left: Feed, right: Feed, attack: Callable[[Feed, Feed], Candidates]) -> Candidates:
    """Each pseudonym of ``left`` against those of ``right``, as if ``right`` were known."""
    return attack(left, right)


def score(name: str, candidates: Candidates, right_of: Callable[[str, str], bool],
          pseudonyms: int, mutual: bool = True) -> Score:
    """Claims where the attack leaves one candidate, and (``mutual``) that candidate for
    no other pseudonym; without ``mutual``, every best guess counts as a claim."""
    claimed_by: Counter[str] = Counter(c for cands in candidates.values() for c in cands)
    right = wrong = 0
    for pid, cands in candidates.items():
        if len(cands) != 1:
            continue
        (only,) = cands
        if mutual and claimed_by[only] != 1:
            continue
        if right_of(pid, only):
            right += 1
        else:
            wrong += 1
    return Score(name, pseudonyms, right, wrong)


def _code(resource: dict[str, Any]) -> str:
    codings = (resource.get("code") or {}).get("coding") or [{}]
    return f"{codings[0].get('system')}|{codings[0].get('code')}"


def _numbers(obs: dict[str, Any]) -> list[float]:
    out = []
    if isinstance(q := obs.get("valueQuantity"), dict) and isinstance(q.get("value"),
                                                                         int | float):
        out.append(float(q["value"]))
    if isinstance(v := obs.get("valueInteger"), int) and not isinstance(v, bool):
        out.append(float(v))
    for comp in obs.get("component", []):
        if isinstance(q := comp.get("valueQuantity"), dict) and isinstance(
                q.get("value"), int | float):
            out.append(float(q["value"]))
    return out


# -- the scenario: the demo community, a research recipient, every attack -----------------

RESEARCH = "research-lab"


def add_research(services: Any, share: float = 0.5, seed: int = 7) -> None:
    """A research recipient (HRESCH) and consents to it from ``share`` of the residents:
    the demo has none, and the research feed is the one that releases series."""
    from consent.model import build_consent
    from exchange.cli.client_files import write_client

    _client, jwk = write_client(services.settings, RESEARCH, "ES384", ["HRESCH"],
                                "system/*.rs", replace=True)
    services.registry.add(RESEARCH, "Research lab (demo)", f"Organization/{RESEARCH}",
                          "research", {"keys": [jwk]}, ["HRESCH"], "system/*.rs")
    rng = random.Random(seed)
    consents = []
    for resident in sorted(r for r in services.repository.residents_with("Patient") if r):
        if rng.random() < share:
            consent = build_consent(resident, f"Organization/{RESEARCH}", ["HRESCH"],
                                    classes=["Patient", "Condition", "Observation"])
            consent["id"] = f"research-{resident}"
            consents.append(consent)
    from exchange.fhir.validation import validate_resource

    services.repository.ingest([validate_resource(c, here=services.repository.here)
                                for c in consents])
    for resident in {c["patient"]["reference"].split("/")[1] for c in consents}:
        services.decider.invalidate(resident)


def attacks(services: Any, get_as: Callable[[str, str], Get],
            today: date) -> tuple[list[Score], list[Score]]:
    """Every attack on the demo community, and each attack on a control (the clinics' own
    records under stand-in ids, nothing coarsened or noised), so that a zero means the
    profile held, not that the attack was blind; ``get_as(client, purpose)`` fetches as
    that recipient."""
    residents = sorted(r for r in services.repository.residents_with("Patient") if r)
    profiles = services.gate.profiles
    clinics: Feed = {}
    for clinic in ("clinic-a", "clinic-b"):
        clinics.update(fetch(get_as(clinic, "TREAT"), ("Patient", "Observation",
                                                       "Condition")))
    insurer = fetch(get_as("insurer", "HPAYMT"), ("Patient", "Condition"))
    hub = fetch(get_as("hub", "CAREMGT"), ("Patient", "Observation", "Condition"))
    research = fetch(get_as(RESEARCH, "HRESCH"), ("Patient", "Observation", "Condition"))
    hub_truth = truth(services.keys, "Organization/hub", "CAREMGT", residents)
    research_truth = truth(services.keys, f"Organization/{RESEARCH}", "HRESCH", residents)

    def against(real: Mapping[str, str]) -> Callable[[str, str], bool]:
        return lambda pid, known: real.get(pid) == known

    def pooled(a: Mapping[str, str], b: Mapping[str, str]) -> Callable[[str, str], bool]:
        return lambda left, right: a.get(left) is not None and a.get(left) == b.get(right)

    care = profiles["care-needs"]
    both = frozenset({"Observation", "Condition"})
    out = []
    for name, feed, real in (("hub", hub, hub_truth), ("research", research, research_truth)):
        judge = against(real)
        n = len([p for p in feed.values() if p.patient or p.observations])
        out += [
            score(f"clinics' records -> {name}: exact values",
                  by_exact_values(feed, clinics), judge, n),
            score(f"clinics' records -> {name}: time of day",
                  by_time_of_day(feed, clinics), judge, n),
            score(f"clinics' records -> {name}: intervals",
                  by_intervals(feed, clinics), judge, n),
            score(f"clinics' records -> {name}: series (counts, means)",
                  by_series(feed, clinics, 0.12), judge, n),
            score(f"clinics' records -> {name}: series, nearest",
                  by_nearest_series(feed, clinics), judge, n),
            score(f"clinics' records -> {name}: weight trend",
                  by_trend(feed, clinics), judge, n),
            score(f"clinics' records -> {name}: every series' shape",
                  by_trends(feed, clinics), judge, n),
            replace(score(f"clinics' records -> {name}: every series' shape, best guess",
                          by_trends(feed, clinics, -1.0, 0.0), judge, n, mutual=False),
                    bounded=False),
            score(f"clinics' records -> {name}: diagnoses",
                  by_diagnoses(feed, clinics), judge, n),
            score(f"clinics' records -> {name}: demographics, facts",
                  by_demographics(feed, clinics, today, care, both), judge, n),
        ]
    n_hub = len(hub)
    out += [
        score("insurer's records -> hub: demographics, facts",
              by_demographics(hub, insurer, today, care, frozenset({"Condition"})),
              against(hub_truth), n_hub),
        score("hub + research pooled: demographics, facts",
              by_demographics(hub, research, today, care, both),
              pooled(hub_truth, research_truth), n_hub),
        score("research + hub pooled: series of both",
              by_series(research, hub, 0.12), pooled(research_truth, hub_truth),
              len(research)),
    ]
    control, stand_in = disguised(clinics)
    judge = against(stand_in)
    n = len(control)
    controls = [
        score("control: exact values", by_exact_values(control, clinics), judge, n),
        score("control: diagnoses", by_diagnoses(control, clinics), judge, n),
        score("control: time of day", by_time_of_day(control, clinics), judge, n),
        score("control: intervals", by_intervals(control, clinics), judge, n),
        score("control: series, nearest", by_nearest_series(control, clinics), judge, n),
        score("control: weight trend", by_trend(control, clinics), judge, n),
        score("control: every series' shape", by_trends(control, clinics), judge, n),
    ]
    return out, [replace(c, bounded=False, control=True) for c in controls]


def disguised(feed: Feed) -> tuple[Feed, dict[str, str]]:
    """A control: ``feed`` with only its ids replaced, nothing coarsened or noised. Every
    attack must find most of it, or the attack, not the profile, is what fails."""
    import hashlib

    out: Feed = {}
    real: dict[str, str] = {}
    for rid, person in feed.items():
        fake = hashlib.sha256(f"control/{rid}".encode()).hexdigest()[:40]
        real[fake] = rid
        out[fake] = person
    return out, real


def linkage_report(residents: int) -> None:
    """``python -m bench``: every attack on a demo community of ``residents``, with the
    bound, and the controls that show each attack works."""
    import tempfile
    from pathlib import Path

    from fastapi.testclient import TestClient

    from exchange.app import build_services, create_app
    from exchange.config import Settings
    from exchange.demo.seed import seed_demo

    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(Settings(data_dir=Path(tmp) / "data"))
        seed_demo(services, residents)
        add_research(services)
        http = TestClient(create_app(services=services))

        def get_as(client: str, purpose: str) -> Get:
            token = services.tokens.issue(services.registry.get(client), ["system/*.rs"],
                                          purpose)["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            return lambda url: dict(http.get(f"/fhir/{url}", headers=headers).json())

        scores, controls = attacks(services, get_as, services.clock.now().date())
        services.engine.dispose()
    over = [s for s in scores if s.bounded and s.share > BOUND]
    print(f"Linkage adversary ({residents} demo residents; a match is a pseudonym the "
          "attack names uniquely and rightly)")
    for line in [*scores, *controls]:
        print(line.line())
    print(f"  bound {100 * BOUND:.0f}%: " + ("held by every bounded attack" if not over
                                            else f"EXCEEDED by {len(over)}"))

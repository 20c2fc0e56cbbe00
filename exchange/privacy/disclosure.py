"""One disclosure's shaping: the profile the decision named, under the recipient's domain.

A ``Shaper`` holds what every resource of one response shares: the profile, the
recipient's pseudonym domain (one per organization and purpose, keys derived by HKDF from
the root key), each resident's free-text subject, and the k-anonymity guard's verdict over
the Patients the response would carry. The gate makes one per response.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from exchange.fhir.search import Clause, SearchQuery
from exchange.ports import KeyProvider
from exchange.privacy.derived import extensions
from exchange.privacy.free_text import Subject
from exchange.privacy.k_anonymity import GuardResult, guard
from exchange.privacy.methods import ShapeContext
from exchange.privacy.profiles import Profile

PatientLookup = Callable[[str], dict[str, Any] | None]


def domain_of(organization: str | None, purpose: str | None) -> str:
    return f"{organization}/{purpose}"


def domain_keys(keys: KeyProvider, domain: str) -> tuple[bytes, bytes]:
    """The domain's HMAC key (pseudonyms, hashes, date offsets, noise) and its AES-SIV key
    (re-identification tokens), both derived from the root key."""
    return (keys.derive(f"pseudonym/{domain}"),
            keys.derive(f"reidentify/{domain}/a") + keys.derive(f"reidentify/{domain}/b"))


@dataclass
class Shaper:
    profile: Profile
    hash_key: bytes
    siv_key: bytes
    patients: PatientLookup
    today: date
    verdict: GuardResult | None = None
    # Each resident's derived facts (the profile's ``derived``), found by the gate before
    # the guard judges: they leave on the resident's Patient and count as what identifies.
    facts: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    _subjects: dict[str | None, Subject] = field(default_factory=dict)
    _contexts: dict[tuple[str | None, bool], ShapeContext] = field(default_factory=dict)

    @property
    def guarded(self) -> bool:
        return self.profile.k_anonymity is not None

    def context(self, resident: str | None,
                level: Mapping[str, Any] | None = None) -> ShapeContext:
        if level is None:
            # One context per resident for the whole response (its memo of references
            # and dates with it), until the guard's verdict changes the generalization.
            key = (resident, self.verdict is None)
            cached = self._contexts.get(key)
            if cached is None:
                cached = self._contexts[key] = self.context(resident, self._level())
            return cached
        return ShapeContext(hash_key=self.hash_key, siv_key=self.siv_key,
                            subject=lambda: self.subject(resident), today=self.today,
                            date_shift_days=self.profile.date_shift_days, level=dict(level),
                            resident=resident)

    def _level(self) -> dict[str, Any]:
        """The generalization the guard chose, or the profile's finest before it ran."""
        if self.verdict is not None:
            return self.verdict.granularity
        return dict(self.profile.k_anonymity.ladder[0]) if self.profile.k_anonymity else {}

    def subject(self, resident: str | None) -> Subject:
        if resident not in self._subjects:
            patient = self.patients(resident) if resident else None
            self._subjects[resident] = Subject.of(resident, patient)
        return self._subjects[resident]

    def releases(self, resident: str | None) -> bool:
        """Whether the guard lets anything of this resident leave: one it suppressed, or
        never judged (their Patient is not this recipient's to see), leaves in no type."""
        if not self.guarded:
            return True
        return self.verdict is not None and resident in self.verdict.released

    def shape(self, resource: dict[str, Any], resident: str | None) -> dict[str, Any] | None:
        if self.profile.passes_through:
            return resource
        if not self.releases(resident):
            return None
        return self._with_facts(self.profile.apply(resource, self.context(resident)),
                                resident, self._level())

    def _with_facts(self, shaped: dict[str, Any], resident: str | None,
                    level: Mapping[str, Any]) -> dict[str, Any]:
        if not self.profile.facts or shaped.get("resourceType") != "Patient" \
                or resident is None:
            return shaped
        carried = extensions(self.facts.get(resident, {}), level.get("facts"))
        if carried:
            shaped = {**shaped, "extension": [*(shaped.get("extension") or []), *carried]}
        return shaped

    def judge(self, patients: Mapping[str, dict[str, Any]],
              minimize: Callable[[dict[str, Any]], dict[str, Any]]) -> GuardResult | None:
        """Run the guard over the Patients (resident -> record) this response would carry,
        shaped exactly as they would leave, and keep its verdict for ``shape``."""
        rule = self.profile.k_anonymity
        if rule is None:
            return None

        def shape_at(resident: str, patient: dict[str, Any],
                     level: Mapping[str, Any]) -> dict[str, Any]:
            return self._with_facts(self.profile.apply(minimize(patient),
                                                       self.context(resident, level)),
                                    resident, level)

        self.verdict = guard(patients, rule.k, rule.ladder, shape_at, rule.max_suppression)
        return self.verdict


# What a search under a restricting profile may ask of an allowed parameter: its coded
# value, its absence, or their negation. ``:text`` reads a concept's text and its codings'
# displays, ``:contains`` and ``:exact`` a string's words: text the profile scrubs or
# redacts (a name in ``code.text`` would match on the hub's ``code:text=王``).
CODED_MODIFIERS = frozenset({"", "not", "missing"})
# And of a token, the codes it subsumes or that subsume it: read from the same coded value
# as the plain search (its system and code, nothing else), so judged like it: allowed
# where the parameter is, refused where the profile hides it. On a uri they compare paths.
SUBSUMPTION = frozenset({"below", "above"})


def _coded(clause: Clause) -> bool:
    return clause.modifier in CODED_MODIFIERS or (
        clause.modifier in SUBSUMPTION and clause.param is not None
        and clause.param.kind == "token")


def searchable(query: SearchQuery, profile: Profile) -> bool:
    """Whether a search may match a resident disclosed under ``profile``: never on what
    the profile hides (a name, a birth date, an unshifted date, free text), nor through a
    chain, nor in an order that real dates or update times would give (it would reveal
    the shift)."""
    allowed = profile.search_parameters
    if allowed is None:
        return True
    # The order is the recipient's pseudonyms' (``_sort=_id`` or ``-_id``), never a
    # value's: a sort by a shifted date or a perturbed number would order by the truth.
    return all(c.name in allowed and c.chain is None and _coded(c) for c in query.clauses) \
        and all(key == "_id" for key, _ in query.sort)

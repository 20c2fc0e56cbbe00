"""The one road: identify -> decide -> fetch -> shape -> record.

``Gate`` is the only way routes and pages reach the data. It composes one module per kind
of operation (reads, searches, history, writes, the trail, compliance, re-identification,
consent preview, tokens; Bundles compose reads, searches and the write step), and each of
those composes the same phases (``Road``): the recorder starts an operation's audit entry
and completes it, on success or failure, before the answer leaves; the decider is asked
before content is read; the shape phase applies the decision's obligations. Nothing is
inherited: an operation sees only the phases it is given.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from exchange.audit.ledger import AuditLedger
from exchange.decisions.decide import Decider
from exchange.decisions.replay import Replayer
from exchange.gate.aggregates import Aggregates
from exchange.gate.bundles import Bundles
from exchange.gate.compliance import Compliance
from exchange.gate.consent_preview import ConsentPreview
from exchange.gate.deciding import Deciding
from exchange.gate.history import History
from exchange.gate.reads import Reads
from exchange.gate.recording import Recorder
from exchange.gate.reidentification import Reidentification
from exchange.gate.road import Road
from exchange.gate.searches import Searches, SystemSearches
from exchange.gate.shaping import Shaping
from exchange.gate.tokens import TokenGrants
from exchange.gate.trail import Trail
from exchange.gate.writes import Writes
from exchange.gate.writing import Writer
from exchange.identity.registry import ClientRegistry
from exchange.identity.tokens import TokenService
from exchange.ports import Clock, KeyProvider, Monotonic
from exchange.privacy.profiles import Profile
from exchange.store.repository import ResourceRepository


@dataclass(frozen=True)
class GateParts:
    """What the composition root hands the gate: the stores, the decider and the keys."""

    repository: ResourceRepository
    decider: Decider
    ledger: AuditLedger
    registry: ClientRegistry
    tokens: TokenService
    replayer: Replayer
    keys: KeyProvider
    clock: Clock
    monotonic: Monotonic
    profiles: Mapping[str, Profile]
    reasons: Mapping[str, dict[str, str]]


class Gate:
    def __init__(self, parts: GateParts, fhir_base: str, default_count: int = 50,
                 max_count: int = 500, not_found_floor: float = 0.0) -> None:
        recorder = Recorder(parts.ledger, parts.decider, parts.clock, parts.monotonic,
                            not_found_floor)
        self.road = Road(recorder, Deciding(parts.decider, parts.repository),
                         parts.repository,
                         Shaping(parts.repository, parts.keys, parts.clock, parts.profiles,
                                 parts.decider),
                         parts.clock, fhir_base, parts.ledger.sign, default_count, max_count)
        reads, searches, history = Reads(self.road), Searches(self.road), History(self.road)
        writes = Writes(self.road)
        bundles = Bundles(self.road, Writer(self.road), reads, searches)
        trail = Trail(self.road, parts.ledger, parts.registry, dict(parts.reasons))
        compliance = Compliance(self.road, parts.ledger, parts.replayer)
        self.tokens = TokenGrants(recorder, parts.decider, parts.tokens)
        # The operations, by name. Routes call these and nothing else.
        self.recording = recorder.recording
        self.record_refusal = recorder.record_refusal
        self.record_public = recorder.record_public
        self.read = reads.read
        self.consent_receipt = reads.consent_receipt
        self.everything = reads.everything
        self.search = searches.search
        self.system_search = SystemSearches(self.road, searches).search
        self.history = history.history
        self.create = writes.create
        self.update = writes.update
        self.conditional_update = writes.conditional_update
        self.patch = writes.patch
        self.delete = writes.delete
        self.conditional_delete = writes.conditional_delete
        self.bundle = bundles.bundle
        self.audit_events = trail.audit_events
        self.access_history = trail.access_history
        self.summary = compliance.summary
        self.anomalies = compliance.anomalies
        self.integrity = compliance.integrity
        self.verify_now = compliance.verify_now
        self.replay = compliance.replay
        self.reidentify = Reidentification(self.road, parts.keys).reidentify
        self.preview = ConsentPreview(self.road, parts.registry).preview
        self.evaluate_measure = Aggregates(self.road).evaluate

    @property
    def profiles(self) -> dict[str, Profile]:
        return self.road.shaping.profiles

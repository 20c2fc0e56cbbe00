"""The services one exchange instance runs with, built once by the composition root.

Routes never see this object: they receive the gate and the published endpoints through
the narrow dependencies in ``exchange.feeds.deps``. The command line, the demo and the
tests use it as operators of the exchange.
"""

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from exchange.audit.ledger import AuditLedger
from exchange.config import Settings
from exchange.decisions.decide import Decider
from exchange.decisions.replay import Replayer
from exchange.gate import Gate
from exchange.identity.registry import ClientRegistry
from exchange.identity.tokens import TokenService
from exchange.ports import Clock, DecisionPoint, KeyProvider
from exchange.privacy.envelope import Vault
from exchange.publication import Publication
from exchange.store.repository import ResourceRepository


@dataclass
class Services:
    settings: Settings
    engine: Engine
    clock: Clock
    keys: KeyProvider
    vault: Vault
    repository: ResourceRepository
    decision_point: DecisionPoint
    decider: Decider
    ledger: AuditLedger
    registry: ClientRegistry
    tokens: TokenService
    gate: Gate
    publication: Publication
    replayer: Replayer

"""The services one exchange instance runs with, built once by the composition root."""

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from exchange.audit.ledger import AuditLedger
from exchange.config import Settings
from exchange.decisions.decide import Decider
from exchange.feeds.oversight import Oversight
from exchange.gate import Gate
from exchange.identity.registry import ClientRegistry
from exchange.identity.tokens import TokenService
from exchange.ports import Clock, DecisionPoint, KeyProvider
from exchange.privacy.envelope import Vault
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
    oversight: Oversight

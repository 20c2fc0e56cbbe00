"""The resource repository: the store's parts composed into the one object the road uses.

It knows nothing of who asks. The gate decides first and passes the residents a caller may
see (``allowed``) so that filtering happens in SQL, before counting and paging.

Each part lives in its own module and holds one concern: ``resources`` (versions, reads,
history, index rows), ``search_sql`` (searches, includes, candidates), ``compartments`` (a
resident's records, consents and consent stamp) and ``erasure``. The repository exposes
each part's public methods as attributes of the instance (bound methods, not inheritance):
replacing one on the instance, as tests do, changes what every caller of the repository
gets; the parts call each other directly.
"""

from collections.abc import Callable
from datetime import UTC, tzinfo

from sqlalchemy.engine import Engine

from exchange.fhir.references import RELATIVE_ONLY, LocalBases
from exchange.ports import Clock
from exchange.privacy.blind_index import BlindIndex
from exchange.privacy.envelope import Vault
from exchange.store.compartments import Compartments
from exchange.store.erasure import RecordEraser
from exchange.store.resources import (
    DIRECTORY_OWNER,
    Allowed,
    CurrentState,
    ResourceVersions,
    StoredResource,
    Write,
    as_utc,
    new_id,
)
from exchange.store.search_sql import ResourceSearch
from exchange.store.units import after_end

__all__ = ["DIRECTORY_OWNER", "Allowed", "CurrentState", "ResourceRepository",
           "StoredResource", "Write", "as_utc", "new_id"]


class ResourceRepository:
    def __init__(self, engine: Engine, vault: Vault, blind: BlindIndex, clock: Clock,
                 zone: tzinfo = UTC, here: LocalBases = RELATIVE_ONLY) -> None:
        self.engine = engine
        self.zone = zone
        self.here = here  # the bases that name this exchange (references to its records)
        versions = ResourceVersions(engine, vault, blind, clock, zone, here)
        searching = ResourceSearch(engine, blind, versions)
        compartments = Compartments(engine, versions)
        eraser = RecordEraser(engine)
        # versions
        self.current = versions.current
        self.apply = versions.apply
        self.ingest = versions.ingest
        self.read = versions.read
        self.history = versions.history
        # search
        self.search = searching.search
        self.included = searching.included
        self.candidate_residents = searching.candidate_residents
        self.residents_with = searching.residents_with
        # a resident's compartment
        self.compartment = compartments.compartment
        self.consents_of = compartments.consents_of
        self.consent_stamp = compartments.consent_stamp
        self.consent_stamps = compartments.consent_stamps
        # erasure
        self.erase = eraser.erase

    def after_end(self, action: Callable[[], object]) -> None:
        """Run ``action`` when the present operation's transaction ends, committed or
        rolled back, and now if it has none (``exchange.store.units``)."""
        after_end(self.engine, action)

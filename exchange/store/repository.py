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
from functools import partial

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from exchange.errors import DependencyUnavailable
from exchange.fhir.references import RELATIVE_ONLY, LocalBases
from exchange.ports import Clock
from exchange.privacy.blind_index import BlindIndex
from exchange.privacy.envelope import Vault
from exchange.store.compartments import Compartments
from exchange.store.dependents import labelled
from exchange.store.erasure import RecordEraser
from exchange.store.reindexing import rebuild_indexes
from exchange.store.releases import NoisyReleases
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
from exchange.store.tables import ResourceRow
from exchange.store.units import after_end, reading

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
        # which of some records carry security labels (by their index rows, opening none)
        self.labelled = partial(labelled, engine, blind)
        # a resident's compartment
        self.compartment = compartments.compartment
        self.consents_of = compartments.consents_of
        self.consent_stamp = compartments.consent_stamp
        self.consent_stamps = compartments.consent_stamps
        # erasure
        self.erase = eraser.erase
        # differentially private releases, their answers and the epsilon they spent
        self.noisy_releases = NoisyReleases(engine)
        # the indexes' form, and their rebuild after an upgrade that changes it
        self.index = versions.index
        self.rebuild_indexes = partial(rebuild_indexes, versions)

    def after_end(self, action: Callable[[], object]) -> None:
        """Run ``action`` when the present operation's transaction ends, committed or
        rolled back, and now if it has none (``exchange.store.units``)."""
        after_end(self.engine, action)

    def generation(self) -> tuple[int, str]:
        """What changes whenever any record does: the number of stored versions and the
        latest change. A result computed over the whole store (the k-anonymity guard's
        verdict) is reused while it stays the same; an erasure lowers the count."""
        row = ResourceRow.__table__.c  # type: ignore[attr-defined]
        try:
            with reading(self.engine) as conn:
                count, latest = conn.execute(
                    select(func.count(), func.max(row.last_updated))).one()
        except SQLAlchemyError:
            raise DependencyUnavailable("The record store is unavailable.") from None
        return int(count), str(latest)

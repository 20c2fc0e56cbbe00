"""The phases every operation composes, built once per exchange: record (start and
complete), decide, fetch (the repository), shape; and how answers name themselves."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any
from urllib.parse import urlencode

from exchange.fhir.references import LocalBases
from exchange.gate.deciding import Deciding
from exchange.gate.recording import Recorder
from exchange.gate.shaping import Shaping
from exchange.ports import Clock
from exchange.store.repository import ResourceRepository, StoredResource


@dataclass(frozen=True)
class Road:
    recorder: Recorder
    deciding: Deciding
    repository: ResourceRepository
    shaping: Shaping
    clock: Clock
    fhir_base: str
    sign: Callable[[bytes], bytes]  # the exchange's signature (receipts, checkpoints)
    default_count: int = 50
    max_count: int = 500

    @property
    def zone(self) -> tzinfo:
        """The community's time zone, which dates without one are read in."""
        return self.repository.zone

    @property
    def here(self) -> LocalBases:
        """The bases that name this exchange: the store files references by them, so the
        validator judges them by the same."""
        return self.repository.here

    def url(self, path: str, pairs: Sequence[tuple[str, str]]) -> str:
        query = urlencode(list(pairs))
        return f"{self.fhir_base}/{path}" + (f"?{query}" if query else "")

    def entry(self, row: StoredResource, resource: dict[str, Any] | None,
              mode: str) -> dict[str, Any] | None:
        """A searchset entry, or None for a resource the shape phase withheld."""
        if resource is None:
            return None
        return {"fullUrl": f"{self.fhir_base}/{row.resource_type}/{resource['id']}",
                "resource": resource, "search": {"mode": mode}}

"""Privacy benchmarks: de-identification profile throughput against an orjson round trip of
the same resources, and key rotation for many residents."""

import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from bench.timing import per_second
from exchange.app import build_services
from exchange.config import Settings
from exchange.gate import RequestContext
from exchange.identity.model import Identity
from exchange.privacy.custody import rotate_keys
from exchange.privacy.disclosure import Shaper, domain_keys
from exchange.privacy.envelope import Vault
from exchange.store.tables import ResourceRow


def profile_throughput(services: Any, seconds: float) -> None:
    """Resources per second through the pseudonymizing and research profiles, against
    ``orjson.loads`` + ``orjson.dumps`` of the same stored bytes (the floor)."""
    rows: list[Any] = []
    with services.engine.connect() as conn:
        for rtype in ("Patient", "Observation", "Condition", "Encounter"):
            rows += conn.execute(select(ResourceRow.resource_type,  # type: ignore[call-overload]
                                        ResourceRow.resource_id).where(
                ResourceRow.is_current, ResourceRow.resource_type == rtype).limit(100))
    stored = [services.repository.read(t, i) for t, i in rows]
    bodies = [(r.body, r.patient_id) for r in stored if r is not None]
    patients = {}
    for _, pid in bodies:
        if pid and pid not in patients:
            row = services.repository.read("Patient", pid)
            patients[pid] = orjson.loads(row.body) if row else None

    def round_trip() -> None:
        for body, _ in bodies:
            orjson.dumps(orjson.loads(body))

    floor = per_second(round_trip, seconds) * len(bodies)
    print(f"De-identification profiles ({len(bodies)} stored Patients, Observations, "
          "Conditions, Encounters; k-guard excluded)")
    print(f"  orjson round trip (the floor)                   {floor:10.0f} resources/s")
    hash_key, siv_key = domain_keys(services.keys, "Organization/hub/CAREMGT")
    for name in ("pseudonymized", "research"):
        profile = services.gate.profiles[name]

        def shape(profile: Any = profile) -> None:
            shaper = Shaper(profile, hash_key, siv_key, patients.get,
                            services.clock.now().date())
            for body, pid in bodies:
                orjson.dumps(shaper.shape(orjson.loads(body), pid))

        rate = per_second(shape, seconds) * len(bodies)
        print(f"  {name:<16} profile, loads+apply+dumps      {rate:10.0f} resources/s"
              f"   ratio {rate / floor:.3f} (goal 0.25)")


def rotation(residents: int) -> None:
    """Time to re-wrap ``residents`` data keys under a new key-encryption key, each batch
    recorded in the audit trail, with the old key retired."""
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(Settings(data_dir=Path(tmp) / "data"))
        # The residents' data keys, in the key store (one transaction: the embedded
        # provider's bulk load).
        services.keys.create_data_keys(  # type: ignore[attr-defined]
            Vault.context(f"r{i:06d}") for i in range(residents))
        ctx = RequestContext("bench", None, "CLI", "exchange keys rotate")
        operator = Identity("operator", "bench")

        def record(operation: str, details: dict[str, Any]) -> None:
            with services.gate.recording(ctx, operator, "administration",
                                         {"operation": operation, **details}):
                pass

        start = time.perf_counter()
        done = rotate_keys(services.keys, record, retire=True)
        elapsed = time.perf_counter() - start
        print(f"Key rotation: {done.rewrapped} data keys re-wrapped, "
              f"{', '.join(done.retired)} retired")
        print(f"  {residents} residents                                {elapsed:10.2f} s"
              f"   ({done.rewrapped / elapsed:.0f} keys/s)")
        services.engine.dispose()


def guarded_search(services: Any, seconds: float) -> None:
    """A page of the hub's pseudonymized Patient search (the k-anonymity guard reads and
    judges every match) against a page of a clinic's identified Patient search."""
    ctx = RequestContext("bench", None, "GET", "/fhir/Patient")
    page = [("_count", "10")]

    def identity(client: str, purpose: str) -> Any:
        token = services.tokens.issue(services.registry.get(client), ["system/*.rs"],
                                      purpose)["access_token"]
        return services.tokens.authenticate(token)

    clinic, hub = identity("clinic-a", "TREAT"), identity("hub", "CAREMGT")
    plain = per_second(lambda: services.gate.search(ctx, clinic, "Patient", page), seconds)
    first = orjson.loads(services.gate.search(ctx, hub, "Patient", page).body)
    guarded = per_second(lambda: services.gate.search(ctx, hub, "Patient", page), seconds)
    report = next((e["resource"]["issue"][0]["details"]["text"] for e in first["entry"]
                   if e["search"]["mode"] == "outcome"), "no guard report")
    print("Patient search, one page of 10")
    print(f"  a clinic, identified                            {plain:10.1f} /s")
    print(f"  the hub, pseudonymized, k-guard over all matches {guarded:9.1f} /s"
          f"   ratio {guarded / plain:.3f}")
    print(f"  ({report})")

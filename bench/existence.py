"""Hidden against missing, by the stopwatch of a caller over HTTP: the answers are equal in
status, body and headers (tests/api/test_existence.py); here, in time."""

import random
import statistics
import time
from typing import Any

import httpx


def hidden_and_missing(services: Any, http: httpx.Client, who: Any, token: str,
                       samples: int = 300) -> None:
    from sqlalchemy import select

    from exchange.store.tables import ResourceRow

    with services.engine.connect() as conn:
        stmt = select(ResourceRow.patient_id, ResourceRow.resource_id).where(  # type: ignore[call-overload]
            ResourceRow.resource_type == "Observation", ResourceRow.is_current)
        rows = list(conn.execute(stmt))
    hidden = next((oid for pid, oid in rows
                   if not services.decider.decide(who, "read", ["Observation"], pid).allow),
                  None)
    if hidden is None:
        print("Hidden against missing: every resident consented to this clinic")
        return
    headers = {"Authorization": f"Bearer {token}"}
    times: dict[str, list[float]] = {"hidden": [], "missing": []}
    for i in range(samples):
        pair = [("hidden", f"/fhir/Observation/{hidden}"),
                ("missing", f"/fhir/Observation/no-such-{i}")]
        random.shuffle(pair)  # neither always goes first
        for kind, path in pair:
            started = time.perf_counter()
            assert http.get(path, headers=headers).status_code == 404
            times[kind].append(time.perf_counter() - started)
    hid, mis = (statistics.median(times[k]) for k in ("hidden", "missing"))
    floor = services.settings.not_found_floor_seconds
    print(f"Hidden against missing (GET Observation, {samples} each, medians over HTTP)")
    print(f"  hidden                                          {hid * 1e3:10.2f} ms")
    print(f"  missing                                         {mis * 1e3:10.2f} ms"
          f"   ratio {hid / mis:.3f} (floor {floor * 1e3:.0f} ms)")

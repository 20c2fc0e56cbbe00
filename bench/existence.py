"""Hidden against missing, by the stopwatch of a caller over HTTP: the answers are equal in
status, body and headers (tests/api/test_existence.py); here, in time."""

import random
import statistics
import threading
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
    floor = services.settings.not_found_floor_seconds
    print(f"Hidden against missing (GET Observation, medians over HTTP, floor "
          f"{floor * 1e3:.0f} ms)")
    for clients in (1, 10):
        times: dict[str, list[float]] = {"hidden": [], "missing": []}

        def ask(n: int, times: dict[str, list[float]] = times) -> None:
            with httpx.Client(base_url=str(http.base_url)) as own:
                for i in range(n):
                    pair = [("hidden", f"/fhir/Observation/{hidden}"),
                            ("missing", f"/fhir/Observation/no-such-{i}")]
                    random.shuffle(pair)  # neither always goes first
                    for kind, path in pair:
                        started = time.perf_counter()
                        assert own.get(path, headers=headers).status_code == 404
                        times[kind].append(time.perf_counter() - started)

        threads = [threading.Thread(target=ask, args=(max(samples // clients, 50),))
                   for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        hid, mis = (statistics.median(times[k]) for k in ("hidden", "missing"))
        print(f"  {clients:2d} client(s): hidden {hid * 1e3:7.2f} ms, missing "
              f"{mis * 1e3:7.2f} ms                ratio {hid / mis:.3f}")

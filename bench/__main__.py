"""Benchmarks of the road, ingest and decisions. Run with ``python -m bench``.

Every figure comes with a floor measured in the same run on the same data, and the ratio
between them, so the numbers mean something on any machine.
"""

import argparse
import socket
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn

from bench.existence import hidden_and_missing
from bench.index_at_rest import print_searches
from bench.ledger import appends_under_reads, verify_large
from bench.linkage import linkage_report
from bench.privacy import guarded_search, profile_throughput, rotation
from bench.timing import per_second
from exchange.app import build_services, create_app
from exchange.config import Settings
from exchange.demo.records import observation_bundle_for_bench
from exchange.demo.seed import seed_demo
from exchange.fhir.validation import validate_resource
from exchange.gate import RequestContext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--residents", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--ledger-entries", type=int, default=1_000_000,
                        help="size of the ledger to verify (0 skips it)")
    parser.add_argument("--rotation-residents", type=int, default=10_000,
                        help="data keys to re-wrap in the rotation benchmark (0 skips it)")
    parser.add_argument("--linkage-residents", type=int, default=300,
                        help="size of the demo community the linkage adversary attacks "
                             "(0 skips it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        services = build_services(Settings(data_dir=Path(tmp), base_url=base))
        seed_demo(services, args.residents)
        server = uvicorn.Server(uvicorn.Config(create_app(services=services), host="127.0.0.1",
                                               port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            with httpx.Client(base_url=base) as http:
                run(services, http, args.seconds)
            profile_throughput(services, args.seconds)
            guarded_search(services, args.seconds)
            print_searches(services, args.seconds)
            appends_under_reads(services, args.seconds)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            services.engine.dispose()
    if args.linkage_residents:
        linkage_report(args.linkage_residents)
    if args.rotation_residents:
        rotation(args.rotation_residents)
    if args.ledger_entries:
        verify_large(args.ledger_entries)


def revocation(services: Any, who: Any) -> None:
    """Time from a resident's revocation to the first denial: in this worker (the cache is
    dropped on write) and in another worker on the same database (stamp re-read every 0.5 s).
    The resident is one with no other consent to this clinic, so the one revoked is all
    that opened their record."""
    from sqlalchemy import select

    from consent.model import build_consent
    from exchange.errors import NotFound
    from exchange.store.tables import ResourceRow

    with services.engine.connect() as conn:
        stmt = select(ResourceRow.resource_id).where(  # type: ignore[call-overload]
            ResourceRow.resource_type == "Patient", ResourceRow.is_current)
        residents = [r for (r,) in conn.execute(stmt)]
    pid = next((r for r in residents
                if not services.decider.decide(who, "read", ["Patient"], r).allow), None)
    if pid is None:
        print("Revocation: every resident consented to this clinic; nothing to revoke")
        return

    me = services.tokens.authenticate(services.tokens.issue_resident(pid))
    ctx = RequestContext("bench", None, "PUT", "/fhir/Consent")
    other = build_services(Settings(data_dir=services.settings.data_dir,
                                    base_url=services.settings.base_url))

    def visible(svc: Any) -> bool:
        try:
            svc.gate.read(ctx, who, "Patient", pid)
            return True
        except NotFound:
            return False

    created = services.gate.create(ctx, me, "Consent", build_consent(
        pid, who.organization, [who.purpose]))
    consent = orjson.loads(created.body)
    assert visible(services) and visible(other)
    consent["status"] = "inactive"
    start = time.perf_counter()
    services.gate.update(ctx, me, "Consent", consent["id"], consent)
    here = time.perf_counter() - start if not visible(services) else float("nan")
    while visible(other) and time.perf_counter() - start < 5:
        time.sleep(0.01)
    elsewhere = time.perf_counter() - start if not visible(other) else float("inf")
    print("Revocation to first denial (the resident's only consent to this clinic)")
    print(f"  same worker                                     {here * 1e3:10.1f} ms")
    print(f"  another worker on the same database             {elsewhere * 1e3:10.1f} ms"
          "   (bound: 1000 ms)")
    other.engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(services: Any, http: httpx.Client, seconds: float) -> None:
    from sqlalchemy import select

    from exchange.store.tables import ResourceRow

    with services.engine.connect() as conn:
        pid, oid = conn.execute(select(ResourceRow.patient_id, ResourceRow.resource_id).where(
            ResourceRow.resource_type == "Observation").limit(1)).one()  # type: ignore[arg-type]
    # A clinic that the resident consented to.
    client = "clinic-a"
    who = None
    for candidate in ("clinic-a", "clinic-b"):
        probe = services.tokens.issue(services.registry.get(candidate), ["system/*.rs"],
                                      "TREAT")["access_token"]
        identity = services.tokens.authenticate(probe)
        if services.decider.decide(identity, "read", ["Observation"], pid).allow:
            client, who, token = candidate, identity, probe
            break
    if who is None:
        raise SystemExit("no consenting clinic in this seed; try more residents")
    ctx = RequestContext("bench", "127.0.0.1", "GET", f"/fhir/Observation/{oid}")
    headers = {"Authorization": f"Bearer {token}"}

    bare = per_second(lambda: services.repository.read("Observation", oid), seconds)
    gate = per_second(lambda: services.gate.read(ctx, who, "Observation", oid), seconds)
    over_http = per_second(lambda: http.get(f"/fhir/Observation/{oid}", headers=headers),
                           seconds)
    print(f"Single read (Observation, {client})")
    print(f"  bare read of the stored JSON (select + decrypt) {bare:10.0f} /s")
    print(f"  the whole road (decide, fetch, shape, audit)    {gate:10.0f} /s"
          f"   ratio {gate / bare:.3f}")
    print(f"  the whole road over HTTP (uvicorn, one client)  {over_http:10.0f} /s"
          f"   ratio {over_http / bare:.3f}")

    bundle = observation_bundle_for_bench(pid, 100)
    resources = [e["resource"] for e in bundle["entry"]]
    validate_only = per_second(lambda: [validate_resource(r) for r in resources], seconds)
    writer = services.tokens.authenticate(services.tokens.issue(
        services.registry.get(client), ["system/*.cruds"], "TREAT")["access_token"])
    post = RequestContext("bench", "127.0.0.1", "POST", "/fhir")
    ingest = per_second(lambda: services.gate.bundle(post, writer, bundle), seconds)
    print("Ingest of 100-entry transaction bundles")
    print(f"  validation alone                                {validate_only * 100:10.0f}"
          " resources/s")
    print(f"  the whole road, one transaction per bundle      {ingest * 100:10.0f}"
          f" resources/s   ratio {ingest / validate_only:.3f}")

    policy_input = services.decider.policy_input(who, "read", ["Observation"], pid)
    engine = per_second(lambda: services.decision_point.decide("data.exchange.decision",
                                                               policy_input), seconds)
    print("Decisions")
    print(f"  Rego evaluation alone (regorus RVM)             {engine:10.0f} /s"
          f"   {1e6 / engine:.0f} µs each")
    def uncached() -> None:
        services.decider.decide_input(services.decider.policy_input(
            who, "read", ["Observation"], pid))

    cached = per_second(lambda: services.decider.decide(who, "read", ["Observation"], pid),
                        seconds)
    fresh = per_second(uncached, seconds)
    print(f"  uncached, input built from cached consents      {fresh:10.0f} /s"
          f"   {1e6 / fresh:.0f} µs each (goal 100)")
    print(f"  cached (same requester, resident, consents)     {cached:10.0f} /s"
          f"   {1e6 / cached:.1f} µs each (goal 5)   ratio {cached / fresh:.0f}")
    hidden_and_missing(services, http, who, token)
    revocation(services, who)
    print(f"measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()

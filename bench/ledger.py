"""Ledger benchmarks: appends under concurrent reads, and verifying a large ledger."""

import multiprocessing
import secrets
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import insert

from exchange.app import build_services
from exchange.audit.appending import AUDIT_OWNER, filter_columns
from exchange.audit.merkle import CompactRange, leaf_hash
from exchange.config import Settings
from exchange.fhir.dates import to_instant
from exchange.services import Services
from exchange.store.tables import AuditNode, AuditRow


def _rate(fn: Any, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def _reader_process(data_dir: str, oid: str, seconds: float, started: Any,
                    result: Any) -> None:
    """Reads in a process of their own, as another API worker would."""
    services = build_services(Settings(data_dir=Path(data_dir)))
    started.set()
    result.value = _rate(lambda: services.repository.read("Observation", oid), seconds)
    services.engine.dispose()


def _reads_elsewhere(services: Services, oid: str, seconds: float) -> float:
    ctx = multiprocessing.get_context("spawn")
    started, result = ctx.Event(), ctx.Value("d", 0.0)
    proc = ctx.Process(target=_reader_process, args=(str(services.settings.data_dir), oid,
                                                     seconds, started, result))
    proc.start()
    started.wait(60)
    return proc, result  # type: ignore[return-value]


def appends_under_reads(services: Services, seconds: float) -> None:
    """Appends in this process (4 threads, group-committed) while another process reads
    the same database: the ledger must not slow reads, nor reads the ledger."""
    from sqlalchemy import select

    from exchange.store.tables import ResourceRow

    with services.engine.connect() as conn:
        oid = conn.execute(select(ResourceRow.resource_id).where(  # type: ignore[call-overload]
            ResourceRow.resource_type == "Observation").limit(1)).scalar_one()
    ledger = services.ledger
    entry = {"action": "bench", "who": {"kind": "operator", "subject": "bench"},
             "residents": [], "outcome": "success"}

    proc, result = _reads_elsewhere(services, oid, seconds)
    proc.join()
    reads_alone = result.value
    appends_alone = _rate(lambda: ledger.append(entry), seconds)

    def appending(stop: threading.Event, counts: list[int], i: int) -> None:
        while not stop.is_set():
            ledger.append(entry)
            counts[i] += 1

    proc, result = _reads_elsewhere(services, oid, seconds)
    stop, counts = threading.Event(), [0, 0, 0, 0]
    threads = [threading.Thread(target=appending, args=(stop, counts, i)) for i in range(4)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    proc.join()
    stop.set()
    for t in threads:
        t.join()
    reads_mixed = result.value
    appends_mixed = sum(counts) / (time.perf_counter() - start)
    print("Audit appends and reads (SQLite WAL, synchronous=FULL; reads in another process)")
    print(f"  reads alone                                     {reads_alone:10.0f} /s")
    print(f"  reads while 4 threads append                    {reads_mixed:10.0f} /s"
          f"   ratio {reads_mixed / reads_alone:.3f}")
    print(f"  appends, one thread, no reads                   {appends_alone:10.0f} /s")
    print(f"  appends, 4 threads group-committed, with reads  {appends_mixed:10.0f} /s"
          f"   ratio {appends_mixed / appends_alone:.3f}")


def verify_large(entries: int) -> None:
    """Fill a ledger with ``entries`` synthetic ciphertexts (as the ledger stores them:
    leaves and every completed subtree), then time a full verification."""
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(Settings(data_dir=Path(tmp)))
        now = datetime.now(UTC)
        cr = CompactRange()
        fill_start = time.perf_counter()
        batch = 50_000
        services.vault.ensure_key(AUDIT_OWNER)
        time_text = to_instant(now)
        for first in range(0, entries, batch):
            rows, nodes = [], []
            for seq in range(first + 1, min(first + batch, entries) + 1):
                # A read's entry as the road writes it (about 600 bytes), sealed as stored.
                entry = {"seq": seq, "time": time_text, "action": "read",
                         "outcome": "success", "status": 200, "residents": [f"p{seq % 997}"],
                         "request_id": secrets.token_hex(8),
                         "who": {"kind": "client", "organization": "Organization/clinic-a",
                                 "purpose": "TREAT", "client_id": "clinic-a"},
                         "what": {"type": "Observation", "id": secrets.token_hex(16)},
                         "decisions": [{"allow": True, "consents": ["Consent/c1#1"],
                                        "reasons": ["consent_permit"]}],
                         "request": {"method": "GET", "path": "/fhir/Observation/x",
                                     "query": ""}, "network_address": "127.0.0.1"}
                content = services.vault.seal(
                    AUDIT_OWNER, ("audit", str(seq)),
                    orjson.dumps(entry, option=orjson.OPT_SORT_KEYS))
                leaf = leaf_hash(content)
                rows.append({"seq": seq, "leaf": leaf.hex(), "content": content,
                             **filter_columns(entry)})
                nodes.extend({"level": lv, "index": ix, "hash": h.hex()}
                             for lv, ix, h in cr.append(leaf))
            with services.engine.begin() as conn:
                conn.execute(insert(AuditRow), rows)
                conn.execute(insert(AuditNode), nodes)
        fill = time.perf_counter() - fill_start
        services.ledger.checkpoint()
        start = time.perf_counter()
        tree = services.ledger._proofs.verify()  # the tree alone, as without any key
        tree_took = time.perf_counter() - start
        assert tree.ok, tree
        start = time.perf_counter()
        report = services.ledger.verify()
        took = time.perf_counter() - start
        assert report.ok, report
        print(f"Verify a ledger of {entries:,} entries (filled in {fill:.0f} s)")
        print(f"  the tree and every stored subtree               {tree_took:10.2f} s"
              f"   {entries / tree_took:,.0f} entries/s   goal 10 s: ratio "
              f"{10 / tree_took:.2f}")
        print(f"  full (entries decrypted, columns and tables)    {took:10.2f} s"
              f"   {entries / took:,.0f} entries/s   goal 30 s: ratio {30 / took:.2f}")
        services.engine.dispose()

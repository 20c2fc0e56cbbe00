"""The SIGKILL durability loop (#14.1). Run with ``python -m bench.durability``.

A real ``exchange serve`` process is killed with signal 9 at random moments while
concurrent clinic clients create, update and post transaction Bundles over HTTP, and is
restarted on the same data directory and database each time. Then the exchange is opened
in process and checked:

(a) every write the server acknowledged is stored, with that version and that content;
(b) every version stored during the loop is named in some audit entry's ``written``
    (no data without its entry), and every version an entry names is stored;
(c) no transaction Bundle is partly stored (its entries share one marker identifier:
    all of them or none), and no refused write is stored at all;
(d) the ledger verifies.

Each write carries a marker identifier unique to its operation, so that what is stored
can be traced to the request that asked for it whatever the server answered, or did not
answer before it died. Synthetic residents only. Exits 1 on any violation, and keeps the
data directory then, naming it, so the failure can be examined.

It runs on SQLite (the database in the data directory) and on PostgreSQL (#14: "against
PostgreSQL where the PostgreSQL store exists"): a throwaway cluster (bench/pg_cluster.py)
holds the database, which the server is given as EXCHANGE_DATABASE_URL, and the checks
read; the keys stay in ``<data>-keys``. Only the exchange's server is killed, never
PostgreSQL. ``--database`` chooses; by default both where PostgreSQL's server programs are
installed, else SQLite alone, saying why PostgreSQL was skipped. A failed PostgreSQL run
keeps a dump of its database beside the data directory, since its cluster is removed.
"""

import argparse
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bench import pg_cluster
from consent.model import build_consent
from exchange.app import build_services
from exchange.cli.client_files import read_client
from exchange.cli.data_dir import create_exchange
from exchange.config import Settings
from exchange.demo.seed import CLIENTS, organization, register_clients
from exchange.fhir.validation import validate_resource
from exchange.identity.assertion import make_assertion

# The identifier system that ties each stored version to the operation that wrote it.
MARK = "https://bench.community-exchange.example/sid/durability-operation"
RESIDENT_ID = "https://fhir.community-exchange.example/sid/resident-id"
LOINC = "http://loinc.org"
GRANT = {"grant_type": "client_credentials",
         "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
SCOPE = "system/*.cruds"
CLINICS = tuple(c.client_id for c in CLIENTS if c.kind == "clinic")
FHIR_JSON = "application/fhir+json"
# "Observation/<id>/_history/<v>", at the end of a Location or a transaction entry's one.
VERSIONED = re.compile(r"(?:^|/)([A-Za-z]+)/([A-Za-z0-9\-.]{1,64})/_history/([0-9]+)$")
ETAG = re.compile(r'W/"([0-9]+)"$')
# An If-Match no record reaches: the write is refused (412) after the road has decided,
# and in a transaction after the entries before it were written in its database
# transaction, which must then take them all back.
STALE = 'W/"999999"'

Kind = Literal["create", "update", "transaction"]
Version = tuple[str, str, int]  # resource type, id, version
Database = Literal["sqlite", "postgres"]
DATABASE_NAMES: dict[Database, str] = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


@dataclass(frozen=True)
class Target:
    """The exchange under test: its data directory, port, and database."""

    database: Database
    data_dir: Path
    port: int
    database_url: str = ""  # empty: SQLite, exchange.db in the data directory

    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, database_url=self.database_url,
                        port=self.port)


@dataclass
class Operation:
    """One write sent to the server, and what became of it."""

    marker: str
    kind: Kind
    entries: int  # resource versions it writes if it succeeds
    target: str | None = None  # an update's "Observation/<id>"
    stale: bool = False  # sent with a stale If-Match: must be refused, nothing stored
    # "acknowledged": a 2xx naming its versions; "refused": any other answer; "unknown":
    # the connection broke after the request may have reached the server (the kill).
    outcome: Literal["acknowledged", "refused", "unknown"] = "unknown"
    status: int | None = None
    versions: list[Version] = field(default_factory=list)
    # A 2xx that did not name every version it wrote: an acknowledgement we cannot check.
    malformed: str | None = None


@dataclass
class ClinicKey:
    client_id: str
    alg: str
    kid: str
    pem: bytes


class Load:
    """What the client threads share: where to go, whom to write for, what they sent."""

    def __init__(self, base_url: str, clinics: list[ClinicKey], residents: list[str],
                 seed: int) -> None:
        self.base_url = base_url
        self.token_url = base_url + "/auth/token"
        self.clinics = clinics
        self.residents = residents
        self.seed = seed
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.operations: list[Operation] = []
        # Observations whose creation was acknowledged, with their resident: what PUTs
        # update (an update of an existing id, never an update-as-create).
        self.known: list[tuple[str, str]] = []
        self.in_flight = 0
        self.unreachable = 0  # requests refused at connect: the server was down
        self.errors: list[str] = []  # a client thread that broke: the load was not run

    def add_known(self, rid: str, resident: str) -> None:
        with self.lock:
            self.known.append((rid, resident))

    def pick_known(self, rng: random.Random, count: int) -> list[tuple[str, str]]:
        with self.lock:
            return rng.sample(self.known, min(count, len(self.known)))

    @contextmanager
    def sending(self) -> Iterator[None]:
        """Count a request in flight while it is (the kills say how many they cut off)."""
        with self.lock:
            self.in_flight += 1
        try:
            yield
        finally:
            with self.lock:
                self.in_flight -= 1

    def record(self, operation: Operation) -> None:
        with self.lock:
            self.operations.append(operation)


class ServerFailed(Exception):
    """The server did not come back after a restart."""


class Server:
    """One ``exchange serve`` process at a time on the data directory, database and port."""

    def __init__(self, target: Target, log_path: Path) -> None:
        self.target = target
        self.port = target.port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.startup_seconds: list[float] = []

    def start(self) -> None:
        # Only what the loop sets: an EXCHANGE_DATABASE_URL of the caller's must not send
        # the server to another database than the one checked afterwards.
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
        env.update(EXCHANGE_DATA_DIR=str(self.target.data_dir), EXCHANGE_PORT=str(self.port))
        if self.target.database_url:
            env["EXCHANGE_DATABASE_URL"] = self.target.database_url
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "exchange.cli", "serve"], env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.process is not None
        began = time.monotonic()
        url = f"http://127.0.0.1:{self.port}/fhir/metadata"
        while time.monotonic() - began < timeout:
            if self.process.poll() is not None:
                raise ServerFailed(f"start {self.starts}: the server exited with "
                                   f"{self.process.returncode}\n{self.log_tail()}")
            with suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1.0).status_code == 200:
                    self.startup_seconds.append(time.monotonic() - began)
                    return
            time.sleep(0.05)
        raise ServerFailed(f"start {self.starts}: not serving after {timeout:.0f} s\n"
                           f"{self.log_tail()}")

    def kill(self) -> None:
        """Signal 9 to the server process itself (by its pid), then reap it: never to
        PostgreSQL, whose backends see the connections drop and roll back what was open."""
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        """The end of the run: a normal shutdown, a kill if it does not come."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# -- seeding -----------------------------------------------------------------------------


def patient(pid: str, index: int) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid,
            "identifier": [{"system": RESIDENT_ID, "value": f"DUR{index:06d}"}],
            "name": [{"family": "Durability", "given": [f"Resident{index}"]}],
            "gender": "female" if index % 2 else "male", "birthDate": "1944-05-01"}


def seed(target: Target, residents: int) -> tuple[set[Version], list[str]]:
    """A new exchange with the demo's clients (their keys in ``clients/``, as ``exchange
    token`` reads them), their organizations, and residents who consent to both clinics
    for treatment, in the target's database. Returns the versions it stored and the
    residents."""
    services = create_exchange(target.settings())
    try:
        register_clients(services)
        services.repository.ingest([validate_resource(organization(c)) for c in CLIENTS])
        pids = [f"dur-{i}" for i in range(residents)]
        services.repository.ingest([validate_resource(patient(p, i))
                                    for i, p in enumerate(pids)])
        now = services.clock.now()
        services.repository.ingest([
            validate_resource({**build_consent(p, f"Organization/{c}", ["TREAT"], when=now),
                               "id": f"{p}-treat-{c}"})
            for p in pids for c in CLINICS])
        return stored_versions(services.engine), pids
    finally:
        services.engine.dispose()


def stored_versions(engine: Engine) -> set[Version]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT resource_type, resource_id, version_id FROM resource"))
        return {(str(t), str(i), int(v)) for t, i, v in rows}


def clinic_keys(target: Target) -> list[ClinicKey]:
    settings = target.settings()
    keys = []
    for client_id in CLINICS:
        info = read_client(settings, client_id)
        keys.append(ClinicKey(info.client_id, info.alg, info.kid,
                              info.private_key.read_bytes()))
    return keys


# -- the load ------------------------------------------------------------------------------


def observation(marker: str, resident: str, rng: random.Random,
                rid: str | None = None) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation", "status": "final",
        "identifier": [{"system": MARK, "value": marker}],
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                  "observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{resident}"},
        "effectiveDateTime": "2025-01-15T09:00:00+08:00",
        "valueQuantity": {"value": rng.randint(50, 110), "unit": "/min"}}
    if rid is not None:
        obs["id"] = rid
    return obs


def registration(marker: str, rng: random.Random) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": MARK, "value": marker}],
            "name": [{"family": "Durability", "given": [f"New{rng.randrange(10**6)}"]}],
            "gender": rng.choice(["female", "male"]), "birthDate": "1946-10-02"}


def plan(load: Load, rng: random.Random, marker: str) -> tuple[Operation, httpx.Request]:
    """The next write: a create, an update of an acknowledged id, or a transaction of
    two to four creates and, half the time, an update. One create in ten registers a new
    resident, whose data key is made in the same transaction as the record; one update
    and one transaction in twenty end with a stale If-Match, to be refused whole."""
    roll = rng.random()
    if roll < 0.035:
        return Operation(marker, "create", 1), httpx.Request(
            "POST", load.base_url + "/fhir/Patient",
            content=orjson.dumps(registration(marker, rng)))
    if roll < 0.35 or (roll < 0.65 and not load.known):
        resident = rng.choice(load.residents)
        body = observation(marker, resident, rng)
        return Operation(marker, "create", 1), httpx.Request(
            "POST", load.base_url + "/fhir/Observation", content=orjson.dumps(body))
    if roll < 0.65:
        ((rid, resident),) = load.pick_known(rng, 1)
        body = observation(marker, resident, rng, rid)
        stale = rng.random() < 0.05
        return Operation(marker, "update", 1, f"Observation/{rid}", stale), httpx.Request(
            "PUT", f"{load.base_url}/fhir/Observation/{rid}", content=orjson.dumps(body),
            headers={"If-Match": STALE} if stale else {})
    entries = []
    for _ in range(rng.randint(2, 4)):
        body = observation(marker, rng.choice(load.residents), rng)
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": body,
                        "request": {"method": "POST", "url": "Observation"}})
    stale = rng.random() < 0.05
    updates = load.pick_known(rng, 1) if stale or rng.random() < 0.5 else []
    for rid, resident in updates:
        request = {"method": "PUT", "url": f"Observation/{rid}"}
        entries.append({"resource": observation(marker, resident, rng, rid),
                        "request": {**request, "ifMatch": STALE} if stale else request})
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return Operation(marker, "transaction", len(entries), stale=stale and bool(updates)), \
        httpx.Request("POST", load.base_url + "/fhir", content=orjson.dumps(bundle))


def versions_of(operation: Operation, response: httpx.Response) -> list[Version]:
    """The versions a 2xx names: Location (and ETag) for a create, ETag for an update,
    each entry's location in a transaction-response. ValueError if it does not name
    them all."""
    etag = ETAG.match(response.headers.get("etag", ""))
    if operation.kind == "update":
        # An update answers its version in the ETag alone (R4 gives it no Location).
        if etag is None or operation.target is None:
            raise ValueError(f"{response.status_code} without a version ETag")
        rtype, rid = operation.target.split("/")
        return [(rtype, rid, int(etag[1]))]
    if operation.kind == "create":
        match = VERSIONED.search(response.headers.get("location", ""))
        if match is None:
            raise ValueError(f"{response.status_code} without a versioned Location")
        if etag is None or etag[1] != match[3]:
            raise ValueError(f"ETag {response.headers.get('etag')} against the Location's "
                             f"version {match[3]}")
        return [(match[1], match[2], int(match[3]))]
    bundle = response.json()
    found = []
    for entry in bundle.get("entry") or []:
        match = VERSIONED.search(((entry.get("response") or {}).get("location")) or "")
        if match is None:
            raise ValueError(f"a transaction-response entry without a location: {entry}")
        found.append((match[1], match[2], int(match[3])))
    if bundle.get("type") != "transaction-response" or len(found) != operation.entries:
        raise ValueError(f"a transaction-response of {len(found)} entries for "
                         f"{operation.entries}")
    return found


def token(http: httpx.Client, load: Load, clinic: ClinicKey) -> str | None:
    """An access token as a clinic gets one: a signed client assertion, a fresh jti."""
    assertion = make_assertion(clinic.client_id, clinic.pem, clinic.alg, clinic.kid,
                               load.token_url)
    response = http.post(load.token_url, data={**GRANT, "client_assertion": assertion,
                                               "scope": SCOPE, "purpose_of_use": "TREAT"})
    return str(response.json()["access_token"]) if response.status_code == 200 else None


def client(load: Load, index: int) -> None:
    """A client thread; if it breaks, the run says so rather than pass on less load."""
    try:
        work(load, index)
    except Exception as exc:
        with load.lock:
            load.errors.append(f"client {index} broke: {type(exc).__name__}: {exc}")


def work(load: Load, index: int) -> None:
    """One client: writes as fast as the server answers, until told to stop."""
    rng = random.Random(load.seed * 1000 + index)
    clinic = load.clinics[index % len(load.clinics)]
    bearer: str | None = None
    got_at = 0.0
    count = 0
    with httpx.Client(timeout=15.0) as http:
        while not load.stop.is_set():
            try:
                # Tokens outlive restarts (the signing key is on disk); renewed before
                # their five minutes end, or when refused.
                if bearer is None or time.monotonic() - got_at > 200:
                    bearer, got_at = token(http, load, clinic), time.monotonic()
                    if bearer is None:
                        time.sleep(0.05)
                        continue
            except (httpx.HTTPError, ValueError):
                time.sleep(0.05)  # the server is down or dying: try again shortly
                continue
            count += 1
            operation, request = plan(load, rng, f"{load.seed}-{index}-{count}")
            request.headers.update({"Authorization": f"Bearer {bearer}",
                                    "Content-Type": FHIR_JSON, "Accept": FHIR_JSON,
                                    "Prefer": "return=minimal"})
            try:
                with load.sending():
                    response = http.send(request)
            except httpx.ConnectError:
                # Never reached the server: nothing can be stored, so it is no operation.
                with load.lock:
                    load.unreachable += 1
                time.sleep(0.05)  # not sooner: on a small machine it slows the restart
                continue
            except httpx.HTTPError:
                # Sent, and the connection broke: "unknown", stored whole or not at all.
                load.record(operation)
                continue
            load.record(operation)
            operation.status = response.status_code
            if not response.is_success:
                operation.outcome = "refused"
                if response.status_code == 401:
                    bearer = None
                continue
            try:
                operation.versions = versions_of(operation, response)
            except ValueError as exc:
                operation.malformed = str(exc)
            operation.outcome = "acknowledged"
            if operation.kind == "create":
                for rtype, rid, _ in operation.versions:
                    if rtype == "Observation":
                        body = orjson.loads(request.content)
                        load.add_known(rid, body["subject"]["reference"].split("/")[1])


# -- the checks ----------------------------------------------------------------------------


@dataclass
class Findings:
    violations: list[str] = field(default_factory=list)
    loop_versions: int = 0
    ledger_entries: int = 0
    verified: int = 0
    bundles: Counter[str] = field(default_factory=Counter)

    def violation(self, text: str) -> None:
        self.violations.append(text)


def markers_of(body: bytes) -> set[str]:
    if not body:
        return set()
    resource = orjson.loads(body)
    return {str(i.get("value")) for i in resource.get("identifier") or []
            if isinstance(i, dict) and i.get("system") == MARK}


def check(target: Target, seeded: set[Version], operations: list[Operation]) -> Findings:
    findings = Findings()
    # On PostgreSQL the data directory holds no database: one there would mean a server
    # (or the checks) fell back to SQLite, and the loop tested the wrong store.
    if target.database_url and (target.data_dir / "exchange.db").exists():
        findings.violation(f"an exchange.db in {target.data_dir}, on a PostgreSQL run")
    services = build_services(target.settings())
    try:
        engine = services.engine
        if target.database_url and engine.dialect.name != "postgresql":
            findings.violation(f"the checks read {engine.dialect.name}, not PostgreSQL")
        with engine.connect() as conn:
            rows = list(conn.execute(text(
                "SELECT resource_type, resource_id, version_id, is_current FROM resource")))
            # One current version per resource, and it is the newest: a torn update would
            # leave two current, or none. (A CASE, not SUM(is_current): PostgreSQL does
            # not add booleans.)
            torn = list(conn.execute(text(
                "SELECT resource_type, resource_id FROM resource GROUP BY resource_type, "
                "resource_id HAVING SUM(CASE WHEN is_current THEN 1 ELSE 0 END) != 1 OR "
                "MAX(version_id) != MAX(CASE WHEN is_current THEN version_id END)")))
        for rtype, rid in torn[:5]:
            findings.violation(f"{rtype}/{rid}: not exactly one current version, the newest")
        stored = {(str(t), str(i), int(v)) for t, i, v, _ in rows}
        loop = stored - seeded
        findings.loop_versions = len(loop)

        # What each stored version of the loop carries: the marker of its operation.
        content: dict[Version, set[str]] = {}
        for rtype in sorted({t for t, _, _ in loop}):
            for row in services.repository.history(rtype, None, None, 10**9):
                key = (row.resource_type, row.resource_id, row.version_id)
                if key in loop:
                    content[key] = markers_of(row.body)
        by_marker: Counter[str] = Counter()
        for key in loop:
            marks = content.get(key, set())
            if len(marks) != 1:
                findings.violation(f"{key[0]}/{key[1]}/_history/{key[2]} stored during the "
                                   f"loop carries {len(marks)} operation markers")
            by_marker.update(marks)

        written: set[Version] = set()
        for entry in services.ledger.entries():
            findings.ledger_entries += 1
            for name in entry.get("written") or []:
                match = VERSIONED.search(name)
                if match is None:
                    findings.violation(f"entry {entry.get('seq')} names {name!r}")
                    continue
                written.add((match[1], match[2], int(match[3])))

        # (a) acknowledged means stored, as acknowledged.
        for op in operations:
            if op.outcome != "acknowledged":
                continue
            if op.stale:
                findings.violation(f"{op.kind} {op.marker} with a stale If-Match was "
                                   f"acknowledged")
            if op.malformed:
                findings.violation(f"operation {op.marker} ({op.kind}) was acknowledged "
                                   f"without its versions: {op.malformed}")
            for version in op.versions:
                if version not in stored:
                    findings.violation(f"acknowledged {version[0]}/{version[1]}/_history/"
                                       f"{version[2]} ({op.kind} {op.marker}) is not stored")
                elif op.marker not in content.get(version, set()):
                    findings.violation(f"acknowledged {version[0]}/{version[1]}/_history/"
                                       f"{version[2]} holds another operation's content")
        # (b) no data without its entry, no entry without its data.
        missing = loop - written
        for key in sorted(missing)[:20]:
            findings.violation(f"{key[0]}/{key[1]}/_history/{key[2]} is stored but named "
                               f"in no audit entry")
        if len(missing) > 20:
            findings.violation(f"... {len(missing) - 20} more versions without an entry")
        for key in sorted(written - stored)[:20]:
            findings.violation(f"an audit entry names {key[0]}/{key[1]}/_history/{key[2]}, "
                               f"which is not stored")
        # (c) all or none: per operation, the versions carrying its marker.
        for op in operations:
            have = by_marker.get(op.marker, 0)
            if op.kind == "transaction":
                findings.bundles[_bundle_fate(op, have)] += 1
            if op.outcome == "acknowledged" and have != op.entries:
                findings.violation(f"{op.kind} {op.marker} acknowledged with {op.entries} "
                                   f"entries; {have} stored")
            elif op.outcome == "refused" and have:
                findings.violation(f"{op.kind} {op.marker} refused ({op.status}) yet "
                                   f"{have} of its versions are stored")
            elif op.outcome == "unknown" and have not in (0, op.entries):
                findings.violation(f"{op.kind} {op.marker} partly stored: {have} of "
                                   f"{op.entries} versions")
        # Every version stored in the loop was asked for by a known operation.
        asked = {op.marker for op in operations}
        strays = [m for m in by_marker if m not in asked]
        if strays:
            findings.violation(f"{len(strays)} stored markers of no operation sent")
        # (d) the ledger.
        report = services.ledger.verify()
        findings.verified = report.checked
        if not report.ok:
            findings.violation(f"the ledger does not verify: {report.problem}")
    finally:
        services.engine.dispose()
    return findings


def _bundle_fate(op: Operation, have: int) -> str:
    whole = "whole" if have == op.entries else "none" if have == 0 else "part"
    return f"{op.outcome} {whole}"


# -- the loop ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _terminated(_signum: int, _frame: FrameType | None) -> None:
    # A CI timeout's SIGTERM runs the cleanup (the server is killed) like Ctrl-C does.
    raise SystemExit(143)


@dataclass
class Killing:
    kills: int = 0
    in_flight: int = 0  # kills that cut off at least one request
    seconds: float = 0.0  # of load
    failure: str | None = None


def kill_loop(server: Server, load: Load, args: argparse.Namespace) -> Killing:
    """Load, then signal 9 at a random moment and a restart, ``args.kills`` times."""
    rng = random.Random(load.seed)
    killing = Killing()
    threads = [threading.Thread(target=client, args=(load, i), daemon=True)
               for i in range(args.clients)]
    began = time.monotonic()
    try:
        server.start()
        server.wait_ready()
        for t in threads:
            t.start()
        for _ in range(args.kills):
            time.sleep(rng.uniform(args.min_up, args.max_up))
            if load.in_flight:
                killing.in_flight += 1
            server.kill()
            killing.kills += 1
            server.start()
            server.wait_ready()
        # The last restart serves too, before the clients stop.
        time.sleep(args.max_up)
    except ServerFailed as exc:
        killing.failure = str(exc)
    load.stop.set()
    for t in threads:
        if t.is_alive():
            t.join(timeout=30)
    if any(t.is_alive() for t in threads):
        load.errors.append("a client was still waiting 30 s after the load stopped")
    killing.seconds = time.monotonic() - began
    server.stop()
    return killing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default=None,
                        help="default: both where PostgreSQL's server programs are "
                             "installed, else sqlite")
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--residents", type=int, default=6)
    parser.add_argument("--min-up", type=float, default=0.2,
                        help="least seconds of load between a restart and the next kill")
    parser.add_argument("--max-up", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=None, help="random seed (printed)")
    args = parser.parse_args()
    run_seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    signal.signal(signal.SIGTERM, _terminated)
    began = time.monotonic()
    databases = chosen(args.database)
    # Every database is run even when one fails: each one's figures are worth having.
    failed = [DATABASE_NAMES[d] for d in databases if not run(d, args, run_seed)]
    if len(databases) > 1:
        print(f"durability: {' and '.join(DATABASE_NAMES[d] for d in databases)} in "
              f"{time.monotonic() - began:.0f} s"
              f"{'; FAILED on ' + ' and '.join(failed) if failed else ''}")
    if failed:
        sys.exit(1)


def chosen(asked: str | None) -> list[Database]:
    """The databases to run on. Unasked, PostgreSQL only where it can run, saying why not
    otherwise; asked for and impossible, a refusal rather than a pass on less."""
    reason = pg_cluster.unavailable()
    if asked is None:
        if reason is None:
            return ["sqlite", "postgres"]
        print(f"durability: PostgreSQL skipped: {reason}")
        return ["sqlite"]
    if asked == "sqlite":
        return ["sqlite"]
    if reason is not None:
        sys.exit(f"durability: cannot run on PostgreSQL: {reason}")
    return ["postgres"] if asked == "postgres" else ["sqlite", "postgres"]


def run(database: Database, args: argparse.Namespace, run_seed: int) -> bool:
    """The loop and its checks on one database; False on any violation, and then what
    failed is kept (the data directory, the logs, on PostgreSQL a dump of the database)."""
    began = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix=f"exchange-durability-{database}-"))
    target = Target(database, tmp / "data", free_port())
    server: Server | None = None
    load: Load | None = None
    cluster: pg_cluster.Cluster | None = None
    passed = False
    # Kept when a check fails or the run breaks: what failed is there to examine.
    keep = True
    try:
        # The cluster (if any) is entered first and so left last: the server is killed,
        # and the database dumped, while PostgreSQL still runs; then it is stopped and
        # removed, however the run ended.
        with ExitStack() as stack:
            try:
                if database == "postgres":
                    cluster = stack.enter_context(pg_cluster.cluster())
                    target = replace(target,
                                     database_url=cluster.create_database("durability"))
                server = Server(target, tmp / "server.log")
                seeded, residents = seed(target, args.residents)
                load = Load(f"http://127.0.0.1:{target.port}", clinic_keys(target),
                            residents, run_seed)
                killing = kill_loop(server, load, args)
                findings = check(target, seeded, load.operations)
                for problem in ([killing.failure] if killing.failure else []) + load.errors:
                    findings.violation(problem)
                passed = not findings.violations
                keep = not passed
                report(target, args, load, server, killing, findings,
                       time.monotonic() - began)
            except pg_cluster.ClusterError as exc:
                # A failure, not a skip: the programs are there and should have run. The
                # message carries PostgreSQL's own words; the empty directory is no help.
                print(f"durability on PostgreSQL: the throwaway cluster failed: {exc}")
                keep = False
            except (KeyboardInterrupt, SystemExit):
                keep = False  # stopped from outside: nothing to examine
                raise
            finally:
                if load is not None:
                    load.stop.set()
                if server is not None:
                    server.kill()  # whatever happened, no server is left running
                if keep and cluster is not None and target.database_url:
                    preserve(cluster, target.database_url, tmp)
    finally:
        if keep:
            dumped = " and PostgreSQL's database.sql" if (tmp / "database.sql").exists() \
                else ""
            print(f"  data directory and server log{dumped} kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return passed


def preserve(cluster: pg_cluster.Cluster, database_url: str, into: Path) -> None:
    """What a failed PostgreSQL run leaves to examine once its cluster is removed: a dump
    of the database and PostgreSQL's log. Best effort: the failure is reported anyway."""
    try:
        cluster.dump(database_url, into / "database.sql")
        shutil.copyfile(cluster.log, into / "postgresql.log")
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"  could not keep the PostgreSQL database: {exc}")


def report(target: Target, args: argparse.Namespace, load: Load, server: Server,
           killing: Killing, findings: Findings, seconds: float) -> None:
    ops = load.operations
    outcomes = Counter(op.outcome for op in ops)
    acked = [op for op in ops if op.outcome == "acknowledged"]
    kinds = Counter(op.kind for op in acked)
    registrations = sum(1 for op in acked if op.versions and op.versions[0][0] == "Patient")
    refused = Counter(op.status for op in ops if op.outcome == "refused")
    versions = sum(len(op.versions) for op in acked)
    startup = sorted(server.startup_seconds)
    median = startup[len(startup) // 2] if startup else 0.0
    where = "data directory" if target.database == "sqlite" else "database"
    print(f"durability on {DATABASE_NAMES[target.database]} (seed {load.seed}): "
          f"{killing.kills} SIGKILLs of `exchange serve` ({killing.in_flight} with requests "
          f"in flight), each followed by a restart on the same {where} ({server.starts} "
          f"starts, median {median:.1f} s to serve); {args.clients} clients, "
          f"{killing.seconds:.0f} s of load, {seconds:.0f} s in all")
    print(f"  operations: {len(ops)} sent; {len(acked)} acknowledged ({kinds['create']} "
          f"creates, {registrations} of them new residents, {kinds['update']} updates, "
          f"{kinds['transaction']} transactions), {outcomes['refused']} refused"
          f"{' ' + str(dict(refused)) if refused else ''}, {outcomes['unknown']} cut off "
          f"by a kill; {load.unreachable} not sent (server down)")
    print(f"  versions: {versions} acknowledged, {findings.loop_versions} stored during the "
          f"loop; ledger: {findings.ledger_entries} entries, {findings.verified} verified")
    fates = ", ".join(f"{n} {fate}" for fate, n in sorted(findings.bundles.items()))
    print(f"  transaction Bundles (answer, stored): {fates or 'none'}")
    if not findings.violations:
        print("  OK: every acknowledged write stored as acknowledged; every stored version "
              "in an audit entry; no Bundle partly stored; the ledger verifies")
        return
    print(f"  {len(findings.violations)} VIOLATIONS:")
    for v in findings.violations[:40]:
        print(f"    - {v}")


if __name__ == "__main__":
    main()

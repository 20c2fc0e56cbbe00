"""Erasure that survives a backup (#15.7).

A copy of the database taken before a resident's erasure must open none of their rows
afterwards, with everything that remains: the copy, the live key file, the key store and
every other file of the key directory, through the exchange's own vault and by hand
(AES-GCM with every key-encryption key against every run of bytes on disk that could be
a wrapped key). The database holds no key material at all; the key store keeps no
retired wrapped key; an older exchange's keys move out of its database; and the audit
trail's record of a request holds no name, phone number, national id or resident id.
"""

import base64
import hashlib
import json
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlmodel import create_engine

from exchange.app import build_services
from exchange.config import Settings
from exchange.errors import KeyUnavailable
from exchange.privacy.custody import erase_resident
from exchange.privacy.envelope import Vault, associated_data
from exchange.privacy.key_file import LocalKeyFile
from exchange.store.resources import DIRECTORY_OWNER
from tests.cli.test_commands import run
from tests.community import RESIDENT_ID, Community, build_community, observation

CRUDS = "system/*.cruds"
WRAPPED = 12 + 32 + 16  # nonce | data key | tag
SECRETS = ("王秀英", "秀英", "13912345678", "330106194203081228")  # alice's


@dataclass(frozen=True)
class Row:
    rtype: str
    rid: str
    version: int
    owner: str
    content: bytes

    @property
    def aad(self) -> bytes:
        # a padded (version 2) ciphertext binds its version byte too (envelope.py)
        version = self.content[:1] if self.content[:1] == b"\x02" else b""
        return version + associated_data(self.owner, (self.rtype, self.rid,
                                                      str(self.version)))


@pytest.fixture
def town(tmp_path: Path) -> Iterator[Community]:
    """The three-resident community, its data directory inside ``tmp_path`` (so that
    copies can sit beside it) and its keys in ``data-keys``."""
    community = build_community(tmp_path / "data")
    yield community
    community.services.engine.dispose()


def copy_database(data: Path, to: Path) -> Path:
    """A file-level backup, as taken from a running exchange: the database and SQLite's
    write-ahead log and shared-memory files, byte for byte."""
    to.mkdir()
    for name in ("exchange.db", "exchange.db-wal", "exchange.db-shm"):
        if (data / name).exists():
            shutil.copy2(data / name, to / name)
    return to


def rows_of(database: Path) -> list[Row]:
    with sqlite3.connect(database) as db:
        return [Row(t, i, v, p or DIRECTORY_OWNER, bytes(c)) for t, i, v, p, c in db.execute(
            "SELECT resource_type, resource_id, version_id, patient_id, content FROM resource")]


def opens(key: bytes, row: Row) -> bool:
    try:
        AESGCM(key).decrypt(row.content[1:13], row.content[13:], row.aad)
    except (InvalidTag, ValueError):
        return False
    return True


def keks(keys: Path) -> list[bytes]:
    return [base64.b64decode(v) for v in json.loads((keys / "keys.json").read_text())
            ["keks"].values()]


def secrets_of_key_file(keys: Path) -> list[bytes]:
    raw = json.loads((keys / "keys.json").read_text())
    return [*(base64.b64decode(v) for v in raw["keks"].values()), base64.b64decode(raw["root"])]


def files(*directories: Path) -> list[Path]:
    return [p for d in directories for p in sorted(d.rglob("*")) if p.is_file()]


def unwrapped_anywhere(blob: bytes, kek_values: list[bytes], context: bytes) -> set[bytes]:
    """Every data key that any run of ``WRAPPED`` bytes in ``blob`` unwraps to, under any
    of the KEKs, for ``context``: the attack by hand, without the exchange's code."""
    found: set[bytes] = set()
    for kek in kek_values:
        aead = AESGCM(kek)
        for i in range(len(blob) - WRAPPED + 1):
            try:
                found.add(aead.decrypt(blob[i:i + 12], blob[i + 12:i + WRAPPED], context))
            except InvalidTag:
                continue
    return found


def stored_wrapped(keys: Path) -> dict[str, tuple[str, bytes]]:
    with sqlite3.connect(keys / "data-keys.db") as db:
        return {bytes(c).decode().removeprefix("data-key/"): (k, bytes(w))
                for c, k, w in db.execute("SELECT context, key_id, wrapped FROM data_key")}


def test_a_copy_taken_before_an_erasure_opens_none_of_her_rows_with_all_that_remains(
        town: Community, tmp_path: Path) -> None:
    settings = town.services.settings
    data, keys = settings.data_dir, settings.keys_dir
    h = town.headers("clinic-a", scope=CRUDS)
    for value in (5.9, 6.3):  # versions of her record in the copy, too
        changed = observation("alice-glu-0", "alice", "15074-8", "2022-03-01T09:00:00+08:00",
                              value)
        assert town.http.put("/fhir/Observation/alice-glu-0", json=changed,
                             headers=h).status_code == 200
    assert town.http.get("/fhir/Patient/alice", headers=h).status_code == 200  # in memory
    her_wrapped = stored_wrapped(keys)["alice"][1]
    copy = copy_database(data, tmp_path / "backup")

    erased = run("residents", "erase", "alice", "--yes", "--data", str(data))
    assert erased.returncode == 0, erased.stderr

    rows = rows_of(copy / "exchange.db")
    hers = [r for r in rows if r.owner == "alice"]
    others = [r for r in rows if r.owner in ("bob", "carol")]
    assert len(hers) >= 10 and len(others) >= 16

    # The exchange's own vault, over the copy, with (a copy of) the live key directory.
    restored_keys = tmp_path / "restored-keys"
    shutil.copytree(keys, restored_keys)
    engine = create_engine(f"sqlite:///{copy / 'exchange.db'}")
    vault = Vault(engine, LocalKeyFile(restored_keys / "keys.json"))

    def vault_opens(row: Row) -> bool:
        try:
            vault.open(row.owner, (row.rtype, row.rid, str(row.version)), row.content)
        except KeyUnavailable:
            return False
        return True

    assert sum(vault_opens(r) for r in hers) == 0
    assert all(vault_opens(r) for r in others)
    engine.dispose()

    # By hand. Her wrapped key is nowhere on disk any more, not even as free bytes.
    remaining = files(copy, data, keys)
    assert all(her_wrapped not in p.read_bytes() for p in remaining)
    # Every run of bytes in the key directory and in the copy, unwrapped with every KEK.
    kek_values = keks(keys)
    candidates: set[bytes] = set()
    for path in files(copy, keys):
        candidates |= unwrapped_anywhere(path.read_bytes(), kek_values, Vault.context("alice"))
    assert candidates == set()
    # Nor is a data key lying about in the clear: every 32 bytes of the key directory,
    # and the key file's own secrets, tried as her data key on every row of hers.
    raw_candidates = set(secrets_of_key_file(keys))
    for path in files(keys):
        blob = path.read_bytes()
        raw_candidates |= {blob[i:i + 32] for i in range(len(blob) - 31)}
    assert not any(opens(k, r) for k in raw_candidates for r in hers[:2])
    # The same attack finds a resident who was not erased, so it is a real one.
    bobs = unwrapped_anywhere((keys / "data-keys.db").read_bytes(), kek_values,
                              Vault.context("bob"))
    assert len(bobs) == 1
    (bob_key,) = bobs
    assert all(opens(bob_key, r) for r in others if r.owner == "bob")

    # The worker that held her key in memory has let it go.
    time.sleep(Vault.FORGET_SECONDS + 0.1)
    assert town.services.vault.resident_reference("alice") is None


def test_the_database_holds_no_key_material(town: Community) -> None:
    settings = town.services.settings
    h = town.headers("clinic-a", scope=CRUDS)
    created = town.http.post("/fhir/Patient", json={
        "resourceType": "Patient", "name": [{"family": "欧阳", "given": ["明珠"]}]}, headers=h)
    assert created.status_code == 201
    town.services.keys.rotate()
    assert town.services.keys.rewrap_data_keys(1000) > 0
    raw = town.raw_db()
    with sqlite3.connect(settings.data_dir / "exchange.db") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert "data_key" not in tables
    wrapped = stored_wrapped(settings.keys_dir)
    assert {"alice", "bob", "carol", "_audit", "_directory",
            created.json()["id"]} <= set(wrapped)
    keys = town.services.keys
    plain = [keys.data_key(Vault.context(owner)) for owner in wrapped]
    for material in [*(w for _, w in wrapped.values()), *plain,
                     *secrets_of_key_file(settings.keys_dir)]:
        assert material is not None and material not in raw


def test_the_key_store_keeps_no_retired_wrapped_key(town: Community) -> None:
    settings = town.services.settings
    data, keys = settings.data_dir, settings.keys_dir
    store = keys / "data-keys.db"
    town.headers("clinic-a")  # the ledger's own key is made with its first entry
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    before = stored_wrapped(keys)
    old_keks = keks(keys)

    rotated = run("keys", "rotate", "--retire", "--data", str(data))
    assert rotated.returncode == 0, rotated.stderr
    after = stored_wrapped(keys)
    assert set(after) == set(before) and {k for k, _ in after.values()} == {"kek-2"}
    on_disk = b"".join(p.read_bytes() for p in files(keys))
    for _, old in before.values():
        assert old not in on_disk  # re-wrapped in place, the old bytes overwritten
    for kek in old_keks:
        assert kek not in on_disk and base64.b64encode(kek) not in on_disk  # retired

    erased = run("residents", "erase", "bob", "--yes", "--data", str(data))
    assert erased.returncode == 0, erased.stderr
    assert "bob" not in stored_wrapped(keys)
    assert after["bob"][1] not in store.read_bytes()
    assert b"data-key/bob" not in store.read_bytes()
    # Nothing waits in a journal: the rollback journal lives only within a transaction.
    assert sorted(p.name for p in keys.iterdir()) == [
        "audit-signing-key.pem", "data-keys.db", "keys.json", "token-signing-key.pem"]


def test_the_scan_above_would_see_a_deleted_key_left_in_free_pages(tmp_path: Path) -> None:
    """The control for the test above: without ``secure_delete`` SQLite leaves a deleted
    row's bytes in the file, and looking for them finds them."""
    blob = secrets.token_bytes(WRAPPED)
    with sqlite3.connect(tmp_path / "plain.db") as db:
        db.execute("PRAGMA secure_delete=OFF")
        db.execute("CREATE TABLE t (b BLOB)")
        db.execute("INSERT INTO t VALUES (?)", (blob,))
        db.commit()
        db.execute("DELETE FROM t")
        db.commit()
    assert blob in (tmp_path / "plain.db").read_bytes()


def test_an_older_exchange_moves_its_data_keys_out_of_its_database(
        town: Community, tmp_path: Path) -> None:
    settings = town.services.settings
    data, keys = settings.data_dir, settings.keys_dir
    town.headers("clinic-a")  # the ledger's own key is made with its first entry
    town.services.engine.dispose()
    stored = stored_wrapped(keys)
    # Make it an exchange of before the key store: its data keys in the database, its
    # key file of format 1 with the deny-list of an erased resident, Dora, whose row an
    # old backup restored.
    kek1 = keks(keys)[0]
    nonce = secrets.token_bytes(12)
    dora = nonce + AESGCM(kek1).encrypt(nonce, secrets.token_bytes(32), b"data-key/dora")
    with sqlite3.connect(data / "exchange.db") as db:
        db.execute("CREATE TABLE data_key (owner VARCHAR(64) PRIMARY KEY, "
                   "key_id VARCHAR(64) NOT NULL, wrapped BLOB NOT NULL)")
        db.executemany("INSERT INTO data_key VALUES (?, ?, ?)",
                       [(o, k, w) for o, (k, w) in stored.items()] + [("dora", "kek-1", dora)])
    key_file = json.loads((keys / "keys.json").read_text())
    key_file.update(format=1, forgotten=[hashlib.sha256(b"data-key/dora").hexdigest()])
    (keys / "keys.json").write_text(json.dumps(key_file))
    (keys / "data-keys.db").unlink()
    old_backup = copy_database(data, tmp_path / "old-backup")

    opened = run("audit", "verify", "--data", str(data))
    assert opened.returncode == 0, opened.stderr
    assert f"moved {len(stored)} data keys out of the database" in opened.stderr
    assert "retired kek-1" in opened.stderr

    # The database keeps none of them, not even in free pages or its log.
    with sqlite3.connect(data / "exchange.db") as db:
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'data_key'"
                          ).fetchone() == (0,)
    on_disk = b"".join(p.read_bytes() for p in files(data))
    assert all(w not in on_disk for _, w in stored.values()) and dora not in on_disk
    # The key store has them (not Dora's), under a new KEK; the old one is retired.
    moved = stored_wrapped(keys)
    assert set(moved) == set(stored) and {k for k, _ in moved.values()} == {"kek-2"}
    assert json.loads((keys / "keys.json").read_text())["format"] == 2
    assert list(json.loads((keys / "keys.json").read_text())["keks"]) == ["kek-2"]
    # Everything still opens, and the move is in the trail.
    services = build_services(Settings(data_dir=data, base_url="http://testserver"))
    assert services.repository.read("Patient", "bob") is not None
    assert services.vault.adoption is None  # once only
    moves = [e for e in services.ledger.entries() if (e.get("what") or {}).get("operation")
             == "keys move"]
    assert len(moves) == 1 and moves[0]["what"]["moved"] == len(stored)
    services.engine.dispose()
    # A backup taken before the move: its wrapped keys open under no KEK that remains.
    with sqlite3.connect(old_backup / "exchange.db") as db:
        legacy = db.execute("SELECT owner, wrapped FROM data_key").fetchall()
    assert len(legacy) == len(stored) + 1
    live = keks(keys)
    assert not any(unwrapped_anywhere(bytes(w), live, b"data-key/" + o.encode())
                   for o, w in legacy)
    assert run("audit", "verify", "--data", str(data)).stderr.count("moved") == 0


def test_a_key_file_whose_key_store_is_missing_opens_nothing(town: Community) -> None:
    keys = town.services.settings.keys_dir
    town.services.engine.dispose()
    (keys / "data-keys.db").rename(keys / "elsewhere.db")
    with pytest.raises(KeyUnavailable, match="key store"):
        LocalKeyFile(keys / "keys.json")
    refused = run("audit", "verify", "--data", str(town.services.settings.data_dir))
    assert refused.returncode == 1 and "data-keys.db" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_two_processes_making_the_first_key_of_one_owner_end_with_one(tmp_path: Path) -> None:
    LocalKeyFile(tmp_path / "keys" / "keys.json")
    providers = [LocalKeyFile(tmp_path / "keys" / "keys.json") for _ in range(6)]
    start = threading.Barrier(len(providers))
    made: list[bytes] = []

    def make(provider: LocalKeyFile) -> None:
        start.wait()
        made.append(provider.create_data_key(b"data-key/eve"))

    threads = [threading.Thread(target=make, args=(p,)) for p in providers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == len(providers) and len(set(made)) == 1
    assert providers[0].data_key(b"data-key/eve") == made[0]
    assert providers[0].data_key_count() == 1


def test_a_process_forgets_a_key_another_one_destroyed(tmp_path: Path) -> None:
    now = [0.0]
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    serving = Vault(engine, LocalKeyFile(tmp_path / "keys" / "keys.json"), lambda: now[0])
    command_line = Vault(engine, LocalKeyFile(tmp_path / "keys" / "keys.json"))
    sealed = serving.seal("eve", ("Patient", "eve", "1"), b"{}")
    assert command_line.open("eve", ("Patient", "eve", "1"), sealed) == b"{}"
    command_line.destroy("eve")
    now[0] += Vault.FORGET_SECONDS
    with pytest.raises(KeyUnavailable):
        serving.open("eve", ("Patient", "eve", "1"), sealed)
    engine.dispose()


def test_rotation_after_a_key_provider_of_another_process_rotated_loses_no_kek(
        tmp_path: Path) -> None:
    """Two processes rotate one key directory: each reads the key file again under the
    store's lock, so neither writes over the other's new KEK."""
    one = LocalKeyFile(tmp_path / "keys" / "keys.json")
    two = LocalKeyFile(tmp_path / "keys" / "keys.json")
    key = one.create_data_key(b"data-key/eve")
    assert one.rotate() == "kek-2" and two.rotate() == "kek-3"
    assert two.rewrap_data_keys(10) == 1
    assert one.data_key(b"data-key/eve") == key  # under kek-3, which one had not read
    assert LocalKeyFile(tmp_path / "keys" / "keys.json").key_ids == ["kek-1", "kek-2", "kek-3"]
    with pytest.raises(ValueError, match="primary"):
        one.retire("kek-3")


# The audit trail's record of a request

def trail_text(entry: dict[str, Any]) -> str:
    """What an entry keeps of the request, decoded as a reader would read it."""
    request, what = entry.get("request") or {}, entry.get("what") or {}
    parts = [request.get("path"), request.get("query"), what.get("query"),
             what.get("if_none_exist"), what.get("path")]
    return " ".join(unquote_plus(str(p)) for p in parts if p)


SEARCHES = [
    ("Patient", {"name": "王秀英"}),
    ("Patient", {"family": "王", "given": "秀英"}),
    ("Patient", {"telecom": "13912345678"}),
    ("Patient", {"phone": "13912345678"}),
    ("Patient", {"identifier": f"{RESIDENT_ID}|330106194203081228"}),
    ("Patient", {"identifier": "330106194203081228"}),
    ("Patient", {"birthdate": "1942-03-08"}),
    ("Patient", {"address-city": "杭州市"}),
    ("Patient", {"_id": "alice"}),
    ("Observation", {"patient": "alice"}),
    ("Observation", {"subject": "Patient/alice", "code": "15074-8"}),
    ("Observation", {"patient.name": "王秀英"}),
    ("Observation", {"subject:Patient.telecom": "13912345678"}),
]


def test_the_trail_keeps_no_name_phone_national_id_or_resident_id_of_a_request(
        town: Community) -> None:
    h = town.headers("clinic-a", scope=CRUDS)
    for rtype, params in SEARCHES:
        assert town.http.get(f"/fhir/{rtype}", params=params, headers=h).status_code in (
            200, 400), (rtype, params)
    for path in ("/fhir/Patient/alice", "/fhir/Patient/alice/$everything",
                 "/fhir/Patient/alice/Observation", "/fhir/Patient/alice/_history"):
        assert town.http.get(path, headers=h).status_code == 200, path
    create = town.http.post("/fhir/Observation", json={
        **observation("x", "alice", "8867-4", "2025-01-01", 70, "/min")}, headers={
        **h, "If-None-Exist": "subject.identifier=330106194203081228"})
    assert create.status_code in (200, 201, 400), create.text
    reference = town.services.vault.resident_reference("alice")
    assert reference is not None and len(reference) == 16

    def check(entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            text = trail_text(entry)
            whole = unquote_plus(json.dumps(entry, ensure_ascii=False))
            for secret in (*SECRETS, "王", "杭州", "1942-03-08"):
                assert secret not in text, (secret, text)
            for secret in SECRETS:
                assert secret not in whole, (secret, entry)
            assert "alice" not in text, text

    mine = [e for e in town.services.ledger.entries()
            if (e.get("who") or {}).get("subject") == "clinic-a" and e.get("request")]
    assert len(mine) >= len(SEARCHES) + 5
    check(mine)
    texts = [trail_text(e) for e in mine]
    joined = "\n".join(texts)
    assert f"/fhir/Observation patient=[resident:{reference}]" in joined
    assert f"/fhir/Patient/[resident:{reference}]/$everything" in joined
    assert "/fhir/Patient name=[withheld]" in joined
    assert "/fhir/Patient telecom=[withheld]" in joined
    assert any("code=15074-8" in t for t in texts)  # the shape of the question stays

    # Over HTTP, as a compliance officer reads it (BALP: the query in base64).
    office = town.headers("office", "HCOMPL", "system/AuditEvent.rs")
    events = town.http.get("/fhir/AuditEvent", params={"_count": "200"},
                           headers=office).json()
    queries = [base64.b64decode(e["query"]).decode() for item in events["entry"]
               for e in item["resource"].get("entity", []) if "query" in e]
    assert queries and not any(s in unquote_plus(q) for q in queries for s in SECRETS)

    # After her erasure: a new search by her id finds no reference to give, and nobody
    # can tell whose reference the older entries hold.
    erased = run("residents", "erase", "alice", "--yes", "--data",
                 str(town.services.settings.data_dir))
    assert erased.returncode == 0, erased.stderr
    time.sleep(Vault.FORGET_SECONDS + 0.1)
    assert town.http.get("/fhir/Observation", params={"patient": "alice"},
                         headers=h).status_code == 200
    after = list(town.services.ledger.entries())
    check(after)
    assert trail_text(after[-1]) == "/fhir/Observation patient=[withheld] patient=[withheld]"
    assert town.services.vault.resident_reference("alice") is None
    assert reference not in {town.services.vault.resident_reference(r) for r in ("bob", "carol")}
    verified = run("audit", "verify", "--data", str(town.services.settings.data_dir))
    assert verified.returncode == 0 and "OK" in verified.stdout, verified.stdout


def test_on_postgresql_the_keys_stay_in_the_key_store_and_erasure_holds(
        tmp_path: Path, postgres_server: str) -> None:
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    from tests.postgres import new_database

    community = build_community(tmp_path / "data", database_url=new_database(postgres_server))
    services = community.services
    try:
        with services.engine.connect() as conn:
            tables = {r[0] for r in conn.exec_driver_sql(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public'")}
            backup = [Row(t, i, v, p or DIRECTORY_OWNER, bytes(c))
                      for t, i, v, p, c in conn.exec_driver_sql(
                          "SELECT resource_type, resource_id, version_id, patient_id, content "
                          "FROM resource")]
        assert "resource" in tables and "data_key" not in tables
        assert {"alice", "bob"} <= set(stored_wrapped(services.settings.keys_dir))
        erase_resident(services.repository, services.vault, "alice")
        vault = Vault(services.engine, LocalKeyFile(services.settings.keys_dir / "keys.json"))

        def vault_opens(row: Row) -> bool:
            try:
                vault.open(row.owner, (row.rtype, row.rid, str(row.version)), row.content)
            except KeyUnavailable:
                return False
            return True

        hers = [r for r in backup if r.owner == "alice"]
        assert hers and not any(vault_opens(r) for r in hers)
        assert all(vault_opens(r) for r in backup if r.owner == "bob")
    finally:
        services.engine.dispose()


def test_on_postgresql_an_older_exchange_moves_its_data_keys_out_too(
        tmp_path: Path, postgres_server: str) -> None:
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    from tests.postgres import new_database

    url = new_database(postgres_server)
    community = build_community(tmp_path / "data", database_url=url)
    community.headers("clinic-a")
    settings = community.services.settings
    community.services.engine.dispose()
    keys = settings.keys_dir
    stored = stored_wrapped(keys)
    engine = community.services.engine
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE data_key (owner VARCHAR(64) PRIMARY KEY, "
                             "key_id VARCHAR(64) NOT NULL, wrapped BYTEA NOT NULL)")
        for owner, (kid, wrapped) in stored.items():
            conn.exec_driver_sql("INSERT INTO data_key VALUES (%(o)s, %(k)s, %(w)s)",
                                 {"o": owner, "k": kid, "w": wrapped})
    key_file = json.loads((keys / "keys.json").read_text())
    (keys / "keys.json").write_text(json.dumps({**key_file, "format": 1}))
    (keys / "data-keys.db").unlink()
    engine.dispose()

    services = build_services(Settings(data_dir=settings.data_dir, database_url=url,
                                       base_url="http://testserver"))
    try:
        assert services.vault.adoption is not None
        assert services.vault.adoption.moved == len(stored)
        assert services.vault.adoption.retired == ["kek-1"]
        with services.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT to_regclass('public.data_key')").scalar() is None
        assert set(stored_wrapped(keys)) == set(stored)
        assert services.repository.read("Patient", "bob") is not None
    finally:
        services.engine.dispose()

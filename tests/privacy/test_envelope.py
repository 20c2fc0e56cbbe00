"""Records are encrypted at rest; ciphertexts are bound to their row."""

import os
import secrets
import sqlite3
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.errors import KeyUnavailable
from exchange.privacy.envelope import FORMAT_V1, PAD_BYTES, associated_data, pad, unpad
from tests.community import Community


def test_raw_database_holds_no_names_ids_or_phones(community: Community) -> None:
    h = community.headers("clinic-a", scope="system/*.cruds")
    created = community.http.post("/fhir/Patient", json={
        "resourceType": "Patient", "name": [{"family": "欧阳", "given": ["明珠"]}],
        "identifier": [{"system": "urn:test", "value": "330106195511114446"}],
        "telecom": [{"system": "phone", "value": "13700009999"}]}, headers=h)
    assert created.status_code == 201
    community.http.get("/fhir/Patient", params={"name": "王", "identifier": "13912345678"},
                       headers=h)
    raw = community.raw_db()
    assert len(raw) > 10_000
    for secret in ("王秀英", "秀英", "李建国", "欧阳", "明珠", "330106194203081228",
                   "330106195511114446", "13912345678", "13700009999", "18600001111",
                   "文二西路", "15074-8",
                   # A code of three characters turns up by chance in a few hundred KB of
                   # ciphertext about once in a hundred runs: look for it as stored text.
                   '"I10"', "|I10"):
        assert secret.encode() not in raw, secret


def test_ciphertext_moved_to_another_row_does_not_open(community: Community) -> None:
    h = community.headers("clinic-a")
    assert community.http.get("/fhir/Observation/alice-glu-0", headers=h).status_code == 200
    path = community.services.settings.data_dir / "exchange.db"
    community.services.engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE resource SET content = (SELECT content FROM resource WHERE "
                     "resource_id = 'alice-glu-1') WHERE resource_id = 'alice-glu-0'")
    r = community.http.get("/fhir/Observation/alice-glu-0", headers=h)
    assert r.status_code == 503
    assert r.json()["issue"][0]["details"]["coding"][0]["code"] == "key-unavailable"
    assert "5.4" not in r.text and "6.1" not in r.text


def test_key_file_is_private(community: Community) -> None:
    settings = community.services.settings
    keys = settings.keys_dir
    # Apart from the data: a copy of the data directory is no copy of its keys.
    assert keys.parent == settings.data_dir.parent and keys != settings.data_dir
    assert not list(settings.data_dir.glob("*.pem")) and not list(settings.data_dir.glob("keys*"))
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o700
    for name in ("keys.json", "data-keys.db", "token-signing-key.pem", "audit-signing-key.pem"):
        assert stat.S_IMODE(os.stat(keys / name).st_mode) == 0o600, name


def test_the_database_files_are_the_owners_alone(community: Community) -> None:
    """The database and SQLite's WAL and shared-memory files beside it are 0600: the
    default umask left them readable by every local user (#15)."""
    h = community.headers("clinic-a", scope="system/*.cruds")
    assert community.http.get("/fhir/Patient/alice", headers=h).status_code == 200
    data = community.services.settings.data_dir
    files = [data / name for name in ("exchange.db", "exchange.db-wal", "exchange.db-shm")]
    assert all(f.exists() for f in files)
    for f in files:
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f.name


def test_an_existing_database_open_to_others_is_made_private(tmp_path: Path) -> None:
    from exchange.app import build_services
    from exchange.config import Settings

    (tmp_path / "d").mkdir()
    db = tmp_path / "d" / "exchange.db"
    db.touch(mode=0o644)
    db.chmod(0o644)
    services = build_services(Settings(data_dir=tmp_path / "d"))
    services.engine.dispose()
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600


@settings(max_examples=200, deadline=None)
@given(plaintext=st.binary(max_size=2000))
def test_padding_round_trips_and_hides_the_length_within_a_bucket(plaintext: bytes) -> None:
    padded = pad(plaintext)
    assert len(padded) % PAD_BYTES == 0 and len(padded) > len(plaintext)
    assert unpad(padded) == plaintext


def test_a_records_length_is_told_only_to_the_bucket(community: Community) -> None:
    """Found by an attacker with a copy of the database: a Condition's ciphertext was as
    long as its plaintext, and a depression code's display told its holders apart."""
    h = community.headers("clinic-a", scope="system/*.cruds")
    for code, display in (("I10", "Essential hypertension"),
                           ("F32.9", "Depressive episode, unspecified")):
        r = community.http.post("/fhir/Condition", json={
            "resourceType": "Condition", "subject": {"reference": "Patient/alice"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code,
                                 "display": display}]}}, headers=h)
        assert r.status_code == 201, r.text
    path = community.services.settings.data_dir / "exchange.db"
    with sqlite3.connect(path) as conn:
        sizes = [n for (n,) in conn.execute(
            "SELECT length(content) FROM resource WHERE resource_type = 'Condition' "
            "AND patient_id = 'alice'")]
    assert len(sizes) >= 2 and len(set(sizes)) == 1  # one bucket for both codes
    assert all((n - 29) % PAD_BYTES == 0 for n in sizes)  # 0x02, nonce, tag: 29 bytes


def test_a_record_sealed_before_padding_still_opens(community: Community) -> None:
    vault = community.services.vault
    aead = vault._data_key("alice", create=True).aead
    nonce = secrets.token_bytes(12)
    old = FORMAT_V1 + nonce + aead.encrypt(nonce, b'{"a": 1}', associated_data(
        "alice", ["Observation", "x", "1"]))
    assert vault.open("alice", ["Observation", "x", "1"], old) == b'{"a": 1}'
    new = vault.seal("alice", ["Observation", "x", "1"], b'{"a": 1}')
    assert new[:1] == b"\x02" and vault.open("alice", ["Observation", "x", "1"], new) == \
        b'{"a": 1}'
    # a version byte swapped does not open: the version is in the associated data
    with pytest.raises(KeyUnavailable):
        vault.open("alice", ["Observation", "x", "1"], FORMAT_V1 + new[1:])

"""Key custody across the real command line and API: erasure by crypto-shredding, and
key rotation that re-wraps data keys without touching content."""

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from consent.model import build_consent
from exchange.app import build_services
from exchange.config import Settings
from exchange.errors import KeyUnavailable
from tests.cli.test_commands import run
from tests.community import Community, observation


def backup(community: Community, to: Path) -> Path:
    """A consistent copy of the live database, as a nightly backup would take it."""
    to.mkdir()
    source = sqlite3.connect(community.services.settings.data_dir / "exchange.db")
    target = sqlite3.connect(to / "exchange.db")
    source.backup(target)
    source.close()
    target.close()
    return to


def key_store(community: Community) -> sqlite3.Connection:
    """The key store beside the key file, where the wrapped data keys live."""
    return sqlite3.connect(community.services.settings.keys_dir / "data-keys.db")


def wrapped_keys(community: Community) -> dict[str, str]:
    """owner -> the KEK its data key is wrapped under."""
    with key_store(community) as db:
        return {bytes(c).decode().removeprefix("data-key/"): k
                for c, k in db.execute("select context, key_id from data_key")}


def audit_actions(community: Community) -> list[dict]:
    _, page = community.services.ledger.query(limit=500)
    return [entry for _, entry in page]


def test_an_erased_resident_is_gone_everywhere_and_the_trail_keeps_the_fact(
        community: Community, tmp_path: Path) -> None:
    h = community.headers("clinic-a")
    assert community.http.get("/fhir/Patient/alice", headers=h).status_code == 200
    copy = backup(community, tmp_path / "backup")
    data = community.services.settings.data_dir
    with sqlite3.connect(data / "exchange.db") as db:
        hers = [i for (i,) in db.execute("select resource_id from resource "
                                         "where patient_id='alice'")]
    assert len(hers) > 3
    refused = run("residents", "erase", "alice", "--data", str(data))
    assert refused.returncode == 2
    erased = run("residents", "erase", "alice", "--yes", "--data", str(data))
    assert erased.returncode == 0, erased.stderr
    assert "erased alice" in erased.stdout
    # The API, served by a worker that had alice's key in memory, finds nothing.
    for url in ("/fhir/Patient/alice", "/fhir/Observation/alice-glu-0",
                "/fhir/Patient/alice/$everything"):
        assert community.http.get(url, headers=h).status_code == 404, url
    for url in ("/fhir/Observation?patient=alice", "/fhir/Observation", "/fhir/Patient",
                "/fhir/Condition?code=I10"):
        body = community.http.get(url, headers=h).json()
        assert "alice" not in json.dumps(body.get("entry", [])), url
    # Nothing can be filed under her again: she is an unknown resident, not a 503.
    obs = observation("late", "alice", "15074-8", "2024-06-01", 5.0)
    late = community.http.post("/fhir/Observation", json=obs,
                               headers=community.headers("clinic-a", scope="system/*.cruds"))
    assert late.status_code in (400, 422) and late.json()["resourceType"] == "OperationOutcome"
    again = community.http.post("/fhir/Consent", json=build_consent(
        "alice", "Organization/clinic-b", ["TREAT"]), headers=community.resident_headers("alice"))
    assert again.status_code in (400, 404, 422), again.text
    # The raw file holds no trace of her in the clear, nor a wrapped key for her.
    raw = community.raw_db()
    for secret in ("王秀英", "330106194203081524", "13812345678"):
        assert secret.encode() not in raw
    assert "alice" not in wrapped_keys(community) and "bob" in wrapped_keys(community)
    with sqlite3.connect(data / "exchange.db") as db:
        assert db.execute("select count(*) from sqlite_master where name='data_key'"
                          ).fetchone() == (0,)
        assert db.execute("select count(*) from resource where patient_id='alice'"
                          ).fetchone() == (0,)
        marks = ",".join("?" * len(hers))
        for table in ("term_index", "date_index", "reference_index"):
            assert db.execute(f"select count(*) from {table} where resource_id in ({marks})",
                              hers).fetchone() == (0,), table
    # A backup taken before the erasure still holds her ciphertext, and no key: restored
    # with today's keys (which live apart from the data), nothing opens it.
    shutil.copytree(community.services.settings.keys_dir,
                    Settings(data_dir=copy).keys_dir)
    restored = build_services(Settings(data_dir=copy, base_url="http://testserver"))
    with pytest.raises(KeyUnavailable):
        restored.repository.read("Patient", "alice")
    assert restored.repository.read("Patient", "bob") is not None
    restored.engine.dispose()
    # The trail keeps the fact, and no content.
    (entry,) = [e for e in audit_actions(community) if e.get("action") == "erase"]
    assert entry["what"] == {"type": "Patient", "id": "alice"}
    assert "王" not in json.dumps(entry, ensure_ascii=False)


def test_rotation_rewraps_data_keys_without_touching_content(community: Community) -> None:
    data = community.services.settings.data_dir
    with sqlite3.connect(data / "exchange.db") as db:
        before = db.execute("select resource_id, version_id, content from resource").fetchall()
    keys_before = wrapped_keys(community)
    assert set(keys_before.values()) == {"kek-1"}
    rotated = run("keys", "rotate", "--retire", "--data", str(data))
    assert rotated.returncode == 0, rotated.stderr
    assert "kek-2 is primary" in rotated.stdout and "retired kek-1" in rotated.stdout
    with sqlite3.connect(data / "exchange.db") as db:
        after = db.execute("select resource_id, version_id, content from resource").fetchall()
    keys_after = wrapped_keys(community)
    assert before == after  # content is not re-encrypted
    assert set(keys_before) <= set(keys_after) and set(keys_after.values()) == {"kek-2"}
    keys = community.services.settings.keys_dir
    assert list(json.loads((keys / "keys.json").read_text())["keks"]) == ["kek-2"]
    # The running worker and a fresh one both still read.
    assert community.http.get("/fhir/Patient/alice",
                              headers=community.headers("clinic-a")).status_code == 200
    fresh = build_services(Settings(data_dir=data, base_url="http://testserver"))
    assert fresh.repository.read("Patient", "bob") is not None
    fresh.engine.dispose()
    operations = [e["what"].get("operation") for e in audit_actions(community)
                  if e.get("action") == "administration"]
    assert {"key-rotation-start", "key-rotation-batch", "key-rotation-done"} <= set(operations)

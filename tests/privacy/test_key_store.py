"""The key store beside the key file (exchange/privacy/key_store.py, key_file.py): data
keys survive every rotation, and a destroyed or re-wrapped key's old bytes are nowhere in
the key directory the moment the call returns."""

import os
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.errors import KeyUnavailable
from exchange.privacy.key_file import LocalKeyFile
from exchange.privacy.key_store import SqliteKeyStore

OWNERS = ["ann", "ben", "cai", "dai", "eve"]
operations = st.lists(st.one_of(
    st.tuples(st.just("create"), st.sampled_from(OWNERS)),
    st.tuples(st.just("destroy"), st.sampled_from(OWNERS)),
    st.tuples(st.just("rotate"), st.booleans()),  # and retire what it can
), min_size=1, max_size=12)


def key_directory_bytes(keys: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(keys.iterdir()) if p.is_file())


def wrapped_of(keys: Path) -> dict[bytes, bytes]:
    store = SqliteKeyStore(keys / "data-keys.db", create=False)
    try:
        return {c: w for c, _, w in store.not_under("", 1000)}
    finally:
        store.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_keys_live_until_destroyed_and_nothing_retired_is_kept(
        ops: list[tuple[str, object]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys"
        provider = LocalKeyFile(keys / "keys.json")
        made: dict[str, bytes] = {}
        for op, arg in ops:
            before = wrapped_of(keys)
            if op == "create":
                owner = str(arg)
                key = provider.create_data_key(b"data-key/" + owner.encode())
                assert made.setdefault(owner, key) == key  # the first one stays
            elif op == "destroy":
                owner = str(arg)
                context = b"data-key/" + owner.encode()
                assert provider.destroy_data_key(context) == (owner in made)
                made.pop(owner, None)
                assert provider.data_key(context) is None
                if context in before:
                    assert before[context] not in key_directory_bytes(keys)
            else:
                provider.rotate()
                while provider.rewrap_data_keys(2):
                    pass
                on_disk = key_directory_bytes(keys)
                assert not any(w in on_disk for w in before.values())
                if arg:
                    for kid in provider.key_ids:
                        if kid != provider.primary_key_id:
                            provider.retire(kid)
                    assert provider.key_ids == [provider.primary_key_id]
            # Every live key opens as made, in this process and in a fresh one.
            fresh = LocalKeyFile(keys / "keys.json")
            for owner, key in made.items():
                assert provider.data_key(b"data-key/" + owner.encode()) == key
                assert fresh.data_key(b"data-key/" + owner.encode()) == key
            assert provider.data_key_count() == len(made)
            fresh.close()
        provider.close()


def test_a_kek_that_still_wraps_a_key_is_not_retired(tmp_path: Path) -> None:
    provider = LocalKeyFile(tmp_path / "keys" / "keys.json")
    provider.create_data_key(b"data-key/ann")
    provider.rotate()
    with pytest.raises(ValueError, match="still wrapped"):
        provider.retire("kek-1")
    assert provider.rewrap_data_keys(10) == 1
    provider.retire("kek-1")
    assert provider.key_ids == ["kek-2"]


def test_the_key_store_is_private_and_refused_when_open_to_others(tmp_path: Path) -> None:
    LocalKeyFile(tmp_path / "keys" / "keys.json")
    store = tmp_path / "keys" / "data-keys.db"
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    store.chmod(0o644)
    with pytest.raises(KeyUnavailable, match="open to others"):
        LocalKeyFile(tmp_path / "keys" / "keys.json")


def test_a_key_store_with_keys_but_no_key_file_is_refused(tmp_path: Path) -> None:
    LocalKeyFile(tmp_path / "keys" / "keys.json").create_data_key(b"data-key/ann")
    (tmp_path / "keys" / "keys.json").unlink()
    with pytest.raises(KeyUnavailable, match="key file is missing"):
        LocalKeyFile(tmp_path / "keys" / "keys.json")

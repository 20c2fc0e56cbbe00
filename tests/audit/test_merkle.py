"""Merkle proofs: our own vectors, corrupted proofs, and properties over random trees."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ConsistencyProofError,
    InclusionProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

# RFC 6962's reference test data (as used by Certificate Transparency implementations).
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
                                     "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def tree(n: int) -> tuple[list[bytes], object]:
    leaves = [leaf_hash(d) for d in LEAVES[:n]]

    def subtree(a: int, b: int) -> bytes:
        return root_of(leaves[a:b])

    return leaves, subtree


def test_roots_match_the_reference_vectors() -> None:
    assert root_of([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    for n, expected in enumerate(ROOTS, start=1):
        assert root_of([leaf_hash(d) for d in LEAVES[:n]]).hex() == expected


def test_reference_inclusion_proof() -> None:
    leaves, subtree = tree(8)
    proof = inclusion_proof(0, 8, subtree)
    assert [p.hex() for p in proof] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]
    verify_inclusion(0, 8, leaves[0], proof, bytes.fromhex(ROOTS[7]))


def test_reference_consistency_proof() -> None:
    _, subtree = tree(8)
    proof = consistency_proof(6, 8, subtree)
    assert [p.hex() for p in proof] == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]
    verify_consistency(6, 8, bytes.fromhex(ROOTS[5]), bytes.fromhex(ROOTS[7]), proof)


def flip(proof: list[bytes], i: int) -> list[bytes]:
    bad = list(proof)
    bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
    return bad


def test_corrupted_inclusion_proofs_fail() -> None:
    leaves, subtree = tree(7)
    root = bytes.fromhex(ROOTS[6])
    proof = inclusion_proof(3, 7, subtree)
    for i in range(len(proof)):
        with pytest.raises(InclusionProofError):
            verify_inclusion(3, 7, leaves[3], flip(proof, i), root)
    for bad in (proof[:-1], [*proof, proof[0]], [], [b"short", *proof[1:]]):
        with pytest.raises(InclusionProofError):
            verify_inclusion(3, 7, leaves[3], bad, root)
    with pytest.raises(InclusionProofError):
        verify_inclusion(4, 7, leaves[3], proof, root)  # right proof, wrong position
    with pytest.raises(InclusionProofError):
        verify_inclusion(3, 7, leaves[2], proof, root)  # another entry
    with pytest.raises(InclusionProofError):
        verify_inclusion(7, 7, leaves[3], proof, root)


def test_corrupted_consistency_proofs_fail() -> None:
    _, subtree = tree(8)
    old, new = bytes.fromhex(ROOTS[2]), bytes.fromhex(ROOTS[7])
    proof = consistency_proof(3, 8, subtree)
    verify_consistency(3, 8, old, new, proof)
    for i in range(len(proof)):
        with pytest.raises(ConsistencyProofError):
            verify_consistency(3, 8, old, new, flip(proof, i))
    for bad in (proof[:-1], [*proof, proof[0]], []):
        with pytest.raises(ConsistencyProofError):
            verify_consistency(3, 8, old, new, bad)
    with pytest.raises(ConsistencyProofError):
        verify_consistency(3, 8, bytes.fromhex(ROOTS[3]), new, proof)  # a forked old tree
    with pytest.raises(ConsistencyProofError):
        verify_consistency(4, 4, old, new, [])


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=70), st.data())
def test_every_proof_of_a_random_tree_verifies(data_items: list[bytes],
                                               data: st.DataObject) -> None:
    leaves = [leaf_hash(d) for d in data_items]

    def subtree(a: int, b: int) -> bytes:
        return root_of(leaves[a:b])

    n = len(leaves)
    root = root_of(leaves)
    index = data.draw(st.integers(0, n - 1))
    verify_inclusion(index, n, leaves[index], inclusion_proof(index, n, subtree), root)
    old = data.draw(st.integers(1, n))
    verify_consistency(old, n, root_of(leaves[:old]), root,
                       consistency_proof(old, n, subtree))


@given(st.lists(st.binary(max_size=8), max_size=70))
def test_compact_range_matches_the_tree(items: list[bytes]) -> None:
    cr = CompactRange()
    leaves = []
    for item in items:
        leaves.append(leaf_hash(item))
        for level, index, h in cr.append(leaves[-1]):
            span = 1 << level
            assert h == root_of(leaves[index * span:(index + 1) * span])
        assert cr.root() == root_of(leaves)
    assert node_hash(b"a", b"b") != node_hash(b"b", b"a")


def test_our_own_vectors() -> None:
    """Vectors of the ledger's shape, kept in the repository so that any other
    implementation (a witness, a resident's app) can check itself against ours."""
    import json
    from pathlib import Path

    vectors = json.loads((Path(__file__).parent / "vectors" / "audit_merkle.json").read_text())
    data = [bytes.fromhex(d) for d in vectors["data"]]
    leaves = [leaf_hash(d) for d in data]
    for size, root in vectors["roots"].items():
        assert root_of(leaves[:int(size)]).hex() == root
    for case in vectors["inclusion"]:
        size, index = case["size"], case["index"]
        root = bytes.fromhex(vectors["roots"][str(size)])
        proof = [bytes.fromhex(p) for p in case["proof"]]
        if case["valid"]:
            verify_inclusion(index, size, leaves[index], proof, root)
        else:
            with pytest.raises(InclusionProofError):
                verify_inclusion(index, size, leaves[index], proof, root)
    for case in vectors["consistency"]:
        old, new = case["old"], case["new"]
        proof = [bytes.fromhex(p) for p in case["proof"]]
        args = (old, new, bytes.fromhex(vectors["roots"][str(old)]),
                bytes.fromhex(vectors["roots"][str(new)]), proof)
        if case["valid"]:
            verify_consistency(*args)
        else:
            with pytest.raises(ConsistencyProofError):
                verify_consistency(*args)

"""Merkle tree hashing, proofs and their verification, as RFC 6962 / RFC 9162 define them.

Pure functions. ``subtree(a, b)`` callbacks give the hash of leaves [a, b) of a perfect,
aligned subtree, which is all that proof construction ever needs; the ledger serves them
from stored nodes. Verification rejects a malformed or wrong proof with a typed error.
"""

import hashlib
from collections.abc import Callable, Sequence

Subtree = Callable[[int, int], bytes]


class ProofError(Exception):
    """A proof that does not verify."""


class InclusionProofError(ProofError):
    pass


class ConsistencyProofError(ProofError):
    pass


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


def split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def mth(subtree: Subtree, a: int, b: int) -> bytes:
    """Merkle tree hash of leaves [a, b), from perfect aligned subtrees."""
    n = b - a
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and a % n == 0:
        return subtree(a, b)
    k = split(n)
    return node_hash(mth(subtree, a, a + k), mth(subtree, a + k, b))


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The root over leaf hashes held in memory (for tests and vectors)."""
    def perfect(a: int, b: int) -> bytes:
        if b - a == 1:
            return leaves[a]
        k = (b - a) // 2
        return node_hash(perfect(a, a + k), perfect(a + k, b))

    return mth(perfect, 0, len(leaves))


def inclusion_proof(index: int, size: int, subtree: Subtree) -> list[bytes]:
    if not 0 <= index < size:
        raise ValueError("index outside the tree")

    def path(m: int, a: int, b: int) -> list[bytes]:
        n = b - a
        if n == 1:
            return []
        k = split(n)
        if m < k:
            return [*path(m, a, a + k), mth(subtree, a + k, b)]
        return [*path(m - k, a + k, b), mth(subtree, a, a + k)]

    return path(index, 0, size)


def consistency_proof(old: int, new: int, subtree: Subtree) -> list[bytes]:
    if not 0 < old <= new:
        raise ValueError("sizes out of order")
    if old == new:
        return []

    def subproof(m: int, a: int, b: int, whole: bool) -> list[bytes]:
        n = b - a
        if m == n:
            return [] if whole else [mth(subtree, a, b)]
        k = split(n)
        if m <= k:
            return [*subproof(m, a, a + k, whole), mth(subtree, a + k, b)]
        return [*subproof(m - k, a + k, b, False), mth(subtree, a, a + k)]

    return subproof(old, 0, new, True)


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> None:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        raise InclusionProofError("index outside the tree")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != 32 or sn == 0:
            raise InclusionProofError("proof has the wrong shape")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise InclusionProofError("the proof does not lead to the root")


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """RFC 9162 section 2.1.4.2."""
    if not 0 < old <= new:
        raise ConsistencyProofError("sizes out of order")
    if old == new:
        if proof or old_root != new_root:
            raise ConsistencyProofError("same size, different trees")
        return
    if not proof or any(len(p) != 32 for p in proof):
        raise ConsistencyProofError("proof has the wrong shape")
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ConsistencyProofError("proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise ConsistencyProofError("the proof does not join the two trees")


class CompactRange:
    """The right edge of a growing tree: enough to compute the root after each append."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (height, hash), heights decreasing

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; returns the perfect subtrees it completed as (level, index, hash)."""
        completed = [(0, self.size, leaf)]
        height, h, index = 0, leaf, self.size
        while self._stack and self._stack[-1][0] == height:
            _, left = self._stack.pop()
            h = node_hash(left, h)
            height += 1
            index >>= 1
            completed.append((height, index, h))
        self._stack.append((height, h))
        self.size += 1
        return completed

    @classmethod
    def at(cls, size: int, subtree: Subtree) -> "CompactRange":
        """The right edge of a tree of ``size`` leaves, from its perfect subtrees."""
        cr = cls()
        start = 0
        for bit in reversed(range(size.bit_length())):
            span = 1 << bit
            if size & span:
                cr._stack.append((bit, subtree(start, start + span)))
                start += span
        cr.size = size
        return cr

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        r = self._stack[-1][1]
        for _, h in reversed(self._stack[:-1]):
            r = node_hash(h, r)
        return r

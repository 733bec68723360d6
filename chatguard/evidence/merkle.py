"""RFC 9162 (Certificate Transparency v2, same hashing as RFC 6962) Merkle tree.

This module owns the append-only hash tree over evidence records: tree heads,
inclusion proofs ("record i is in the log of size n") and consistency proofs
("the log of size m is a prefix of the log of size n"), with SHA-256:

* leaf hash   ``SHA-256(0x00 || leaf)``
* node hash   ``SHA-256(0x01 || left || right)``
* empty tree  ``SHA-256("")``
* ``MTH(D[n])`` splits at ``k``, the largest power of two strictly below ``n``
  (RFC 9162 §2.1.1). Not the midpoint: a midpoint split builds a tree, but one
  no other implementation agrees with.

Invariants:

* The ``verify_*`` functions are total: malformed input (wrong hash length,
  wrong proof length, index >= size, sizes out of order, wrong types) returns
  ``False`` and never raises, because a verifier that throws on hostile input
  is a verifier some caller forgets to guard.
* An inclusion proof authenticates ``(leaf, index, root)``; it binds the tree
  size only through the root. Two sizes can share a proof shape (index 0 in
  trees of 5 and 7 leaves), so a verifier must take ``(size, root)`` together
  from one signed checkpoint, never the size from one place and the root from
  another.
* Leaf hashes are read through ``LeafHashes`` (``len`` and integer indexing,
  which every ``Sequence[bytes]`` has), so the durable store can serve them
  from disk; nothing here assumes they are in memory.

No I/O, no clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LeafHashes",
    "LeafStore",
    "MerkleTree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class LeafHashes(Protocol):
    """Read access to leaf hashes by index. Any ``Sequence[bytes]`` qualifies."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> bytes: ...


class LeafStore(LeafHashes, Protocol):
    """Leaf hashes that can also be appended to. A ``list[bytes]`` qualifies."""

    def append(self, leaf_hash: bytes, /) -> None: ...


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one log entry."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly less than ``n`` (for ``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree(leaves: LeafHashes, lo: int, hi: int) -> bytes:
    """``MTH(D[lo:hi])`` for ``hi > lo``, from leaf hashes."""
    n = hi - lo
    if n & (n - 1) == 0:
        # A perfect subtree: hash level by level, no recursion.
        level = [leaves[i] for i in range(lo, hi)]
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        return level[0]
    k = _split(n)
    return node_hash(_subtree(leaves, lo, lo + k), _subtree(leaves, lo + k, hi))


def _check_size(leaves: LeafHashes, size: int) -> None:
    if size < 0 or size > len(leaves):
        raise ValueError(f"tree size {size} out of range: {len(leaves)} leaves are known")


def root(leaf_hashes: LeafHashes) -> bytes:
    """The Merkle tree hash of all of ``leaf_hashes`` (RFC 9162 §2.1.1)."""
    n = len(leaf_hashes)
    return EMPTY_ROOT if n == 0 else _subtree(leaf_hashes, 0, n)


def inclusion_proof(leaf_hashes: LeafHashes, index: int, size: int) -> tuple[bytes, ...]:
    """The audit path for leaf ``index`` in the tree of the first ``size`` leaves.

    RFC 9162 §2.1.3.1, ordered from the leaf's sibling up to the root's child.
    Raises ``ValueError`` unless ``0 <= index < size <= len(leaf_hashes)``.
    """
    _check_size(leaf_hashes, size)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    # Walk down from the root, remembering the sibling subtree at each split;
    # the path is those siblings bottom-up, hence the reverse at the end.
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(_subtree(leaf_hashes, lo + k, hi))
            hi = lo + k
        else:
            path.append(_subtree(leaf_hashes, lo, lo + k))
            lo = lo + k
    path.reverse()
    return tuple(path)


def consistency_proof(leaf_hashes: LeafHashes, old_size: int, new_size: int) -> tuple[bytes, ...]:
    """The proof that the tree of ``old_size`` leaves is a prefix of that of ``new_size``.

    RFC 9162 §2.1.4.1. Empty when ``old_size`` is 0 or equal to ``new_size``
    (there is nothing to prove). Raises ``ValueError`` unless
    ``0 <= old_size <= new_size <= len(leaf_hashes)``.
    """
    _check_size(leaf_hashes, new_size)
    if not 0 <= old_size <= new_size:
        raise ValueError(f"sizes out of order: {old_size} -> {new_size}")
    if old_size in (0, new_size):
        return ()
    # SUBPROOF(m, D[lo:hi], b), unrolled: each step either descends left
    # (recording the right sibling) or right (recording the left sibling and
    # clearing b, because the old tree's root is then no longer a node the
    # verifier already has).
    proof: list[bytes] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(_subtree(leaf_hashes, lo + k, hi))
            hi = lo + k
        else:
            proof.append(_subtree(leaf_hashes, lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        proof.append(_subtree(leaf_hashes, lo, hi))
    proof.reverse()
    return tuple(proof)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_proof(proof: object) -> bool:
    # str and bytes are Sequences too; an empty one must not pass as "no proof".
    if not isinstance(proof, Sequence) or isinstance(proof, (str, bytes, bytearray)):
        return False
    return all(_is_hash(p) for p in proof)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows ``leaf_hash`` at ``index`` in the tree with ``root``.

    RFC 9162 §2.1.3.2, step for step. ``size`` is bound only via ``root``; see
    the module docstring.
    """
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_size(index) and _is_size(size)):
        return False
    if not _is_proof(proof) or index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # A last node with no right sibling is promoted unchanged until
            # it becomes a right child; skip those levels.
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the old tree head is a prefix of the new one.

    RFC 9162 §2.1.4.2 for ``0 < old_size < new_size``. The edge cases the RFC
    leaves to the caller are decided strictly: equal sizes need equal roots and
    an empty proof; old size 0 needs the empty-tree root and an empty proof.
    """
    if not (_is_hash(old_root) and _is_hash(new_root) and _is_size(old_size)):
        return False
    if not (_is_size(new_size) and _is_proof(proof) and old_size <= new_size):
        return False
    if old_size == 0:
        return len(proof) == 0 and old_root == EMPTY_ROOT
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    if len(proof) == 0:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # The old tree is a perfect subtree of the new one, so its root is a
        # node on the path and the proof omits it.
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class MerkleTree:
    """An append-only tree that knows its current root in O(log n).

    Keeps the *frontier* (compact range): the roots of the perfect subtrees
    that the current size decomposes into, one per set bit of the size,
    largest first. Appending merges equal-sized subtrees like a binary counter
    increment (amortised O(1) hashes); the root folds the frontier right to
    left (O(log n)).

    Proofs and roots for other sizes need the leaf hashes themselves, read
    from ``leaf_hashes``: a list by default, or any ``LeafStore`` (for example
    one backed by the evidence files). The tree appends to that store and
    never rewrites it.
    """

    __slots__ = ("_frontier", "_leaves", "_size")

    def __init__(self, leaf_hashes: LeafStore | None = None) -> None:
        self._leaves: LeafStore = [] if leaf_hashes is None else leaf_hashes
        self._frontier: list[bytes] = []
        self._size = 0
        # Rebuild the frontier of an existing store; O(n) once, at start-up.
        for i in range(len(self._leaves)):
            h = self._leaves[i]
            if not _is_hash(h):
                raise ValueError(f"stored leaf hash {i} is not {HASH_SIZE} bytes")
            self._push(h)

    @property
    def size(self) -> int:
        return self._size

    @property
    def leaf_hashes(self) -> LeafHashes:
        return self._leaves

    @property
    def frontier(self) -> tuple[bytes, ...]:
        """Roots of the perfect subtrees making up the tree, largest (leftmost) first."""
        return tuple(self._frontier)

    def append(self, leaf_hash: bytes) -> int:
        """Add one leaf hash; returns its index."""
        if not _is_hash(leaf_hash):
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes")
        self._leaves.append(leaf_hash)
        self._push(leaf_hash)
        return self._size - 1

    def _push(self, leaf_hash: bytes) -> None:
        node, n = leaf_hash, self._size
        # Each trailing 1 bit of the old size is a perfect subtree of the
        # same height as ``node``: merge them, like carrying in binary addition.
        while n & 1:
            node = node_hash(self._frontier.pop(), node)
            n >>= 1
        self._frontier.append(node)
        self._size += 1

    def root(self, size: int | None = None) -> bytes:
        """The tree head at ``size`` (default: now). O(log n) for the current size."""
        if size is None or size == self._size:
            if not self._frontier:
                return EMPTY_ROOT
            r = self._frontier[-1]
            for left in reversed(self._frontier[:-1]):
                r = node_hash(left, r)
            return r
        _check_size(self._leaves, size)
        return EMPTY_ROOT if size == 0 else _subtree(self._leaves, 0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> tuple[bytes, ...]:
        return inclusion_proof(self._leaves, index, self._size if size is None else size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> tuple[bytes, ...]:
        return consistency_proof(
            self._leaves, old_size, self._size if new_size is None else new_size
        )

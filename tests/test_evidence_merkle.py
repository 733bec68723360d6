"""Tests for chatguard.evidence.merkle.

Three independent sources of truth: the Certificate Transparency test vectors
(the same numbers the Go and C++ CT suites check), a naive implementation
written here straight from the RFC 9162 text, and hypothesis tampering.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatguard.evidence.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# --- Reference implementation: RFC 9162 §2.1, transcribed, over raw entries --


def ref_mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = ref_k(n)
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_k(n: int) -> int:
    # "the largest power of two smaller than n (i.e., k < n <= 2k)"
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


# --- Certificate Transparency test vectors -----------------------------------

CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_ROOTS = [  # index = tree size
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (index, size, proof)
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

CT_HASHES = [leaf_hash(d) for d in CT_LEAVES]


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert root([]) == EMPTY_ROOT == bytes.fromhex(CT_ROOTS[0])
    assert MerkleTree().root() == EMPTY_ROOT


@pytest.mark.parametrize("size", range(len(CT_ROOTS)))
def test_ct_vector_roots(size: int) -> None:
    assert root(CT_HASHES[:size]).hex() == CT_ROOTS[size]


def test_hash_prefixes() -> None:
    # Size-1 root is the leaf hash; size-2 root is the node hash of two leaves.
    assert leaf_hash(b"").hex() == CT_ROOTS[1]
    assert node_hash(CT_HASHES[0], CT_HASHES[1]).hex() == CT_ROOTS[2]


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_ct_vector_inclusion(index: int, size: int, proof: list[str]) -> None:
    expected = tuple(bytes.fromhex(p) for p in proof)
    assert inclusion_proof(CT_HASHES, index, size) == expected
    assert verify_inclusion(CT_HASHES[index], index, size, expected, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize(("old", "new", "proof"), CT_CONSISTENCY)
def test_ct_vector_consistency(old: int, new: int, proof: list[str]) -> None:
    expected = tuple(bytes.fromhex(p) for p in proof)
    assert consistency_proof(CT_HASHES, old, new) == expected
    old_root, new_root = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
    assert verify_consistency(old, new, old_root, new_root, expected)


# --- Against the reference, every shape up to 64 leaves -----------------------

ENTRIES = [b"entry-%d" % i for i in range(128)]
HASHES = [leaf_hash(e) for e in ENTRIES]


@cache
def true_root(size: int) -> bytes:
    return ref_mth(ENTRIES[:size])


@pytest.mark.parametrize("size", range(1, 65))
def test_matches_reference(size: int) -> None:
    d = ENTRIES[:size]
    assert root(HASHES[:size]) == true_root(size)
    for index in range(size):
        proof = inclusion_proof(HASHES, index, size)
        assert list(proof) == ref_path(index, d)
        assert verify_inclusion(HASHES[index], index, size, proof, true_root(size))
    for old in range(1, size + 1):
        proof = consistency_proof(HASHES, old, size)
        assert list(proof) == ref_proof(old, d)
        assert verify_consistency(old, size, true_root(old), true_root(size), proof)


def test_consistency_from_the_empty_tree() -> None:
    assert consistency_proof(HASHES, 0, 5) == ()
    assert verify_consistency(0, 5, EMPTY_ROOT, true_root(5), ())
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, ())
    # The empty tree has exactly one root.
    assert not verify_consistency(0, 5, true_root(1), true_root(5), ())


# --- The incremental tree -----------------------------------------------------


def test_tree_root_after_every_append() -> None:
    tree = MerkleTree()
    for i, h in enumerate(HASHES):
        assert tree.append(h) == i
        assert tree.size == i + 1
        assert tree.root() == true_root(i + 1)
        # One stored subtree per set bit of the size: the compact frontier.
        assert len(tree.frontier) == (i + 1).bit_count()
    assert tree.root(37) == true_root(37)
    assert tree.inclusion_proof(3, 37) == inclusion_proof(HASHES, 3, 37)
    assert tree.inclusion_proof(100) == inclusion_proof(HASHES, 100, 128)
    assert tree.consistency_proof(5, 37) == consistency_proof(HASHES, 5, 37)
    assert tree.consistency_proof(5) == consistency_proof(HASHES, 5, 128)


class PackedLeafStore:
    """An in-memory leaf store of the kind the durable log keeps on disk:
    fixed-size records in one buffer, not a list of objects."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def __len__(self) -> int:
        return len(self.buffer) // 32

    def __getitem__(self, index: int) -> bytes:
        if not 0 <= index < len(self):
            raise IndexError(index)
        return bytes(self.buffer[index * 32 : (index + 1) * 32])

    def append(self, leaf_hash: bytes) -> None:
        self.buffer += leaf_hash

    def __iter__(self) -> Iterator[bytes]:
        return (self[i] for i in range(len(self)))


def test_tree_over_a_pluggable_store() -> None:
    store = PackedLeafStore()
    tree = MerkleTree(store)
    for h in HASHES[:20]:
        tree.append(h)
    assert len(store) == 20
    # A restarted process rebuilds the frontier from the store alone.
    reopened = MerkleTree(store)
    assert reopened.size == 20
    assert reopened.frontier == tree.frontier
    assert reopened.root() == true_root(20)
    reopened.append(HASHES[20])
    assert reopened.root() == true_root(21)
    assert reopened.inclusion_proof(7, 13) == inclusion_proof(HASHES, 7, 13)


def test_tree_rejects_bad_leaf_hashes() -> None:
    tree = MerkleTree()
    with pytest.raises(ValueError, match="32 bytes"):
        tree.append(b"short")
    assert tree.size == 0
    with pytest.raises(ValueError, match="stored leaf hash 1"):
        MerkleTree([HASHES[0], b"short"])


@pytest.mark.parametrize(
    ("index", "size", "available"),
    [(0, 0, 4), (4, 4, 4), (-1, 4, 4), (0, 5, 4)],
)
def test_inclusion_proof_rejects_impossible_requests(index: int, size: int, available: int) -> None:
    with pytest.raises(ValueError, match=r"out of range|not in a tree"):
        inclusion_proof(HASHES[:available], index, size)


@pytest.mark.parametrize(("old", "new"), [(5, 4), (-1, 4), (1, 9)])
def test_consistency_proof_rejects_impossible_requests(old: int, new: int) -> None:
    with pytest.raises(ValueError, match=r"out of order|out of range"):
        consistency_proof(HASHES[:8], old, new)


# --- Verification is total: malformed input is False, never an exception -----

GOOD_PROOF = inclusion_proof(HASHES, 3, 7)
GOOD = (HASHES[3], 3, 7, GOOD_PROOF, true_root(7))


@pytest.mark.parametrize(
    "args",
    [
        (HASHES[3], 7, 7, GOOD_PROOF, true_root(7)),  # index == size
        (HASHES[3], 9, 7, GOOD_PROOF, true_root(7)),  # index > size
        (HASHES[3], 0, 0, (), EMPTY_ROOT),  # nothing is in the empty tree
        (HASHES[3], -1, 7, GOOD_PROOF, true_root(7)),
        (HASHES[3], 3, -7, GOOD_PROOF, true_root(7)),
        (HASHES[3], True, 7, GOOD_PROOF, true_root(7)),
        (HASHES[3], 3.0, 7, GOOD_PROOF, true_root(7)),
        (HASHES[3], "3", 7, GOOD_PROOF, true_root(7)),
        (HASHES[3][:31], 3, 7, GOOD_PROOF, true_root(7)),
        (HASHES[3], 3, 7, GOOD_PROOF, true_root(7) + b"\x00"),
        (HASHES[3].hex(), 3, 7, GOOD_PROOF, true_root(7)),
        (HASHES[3], 3, 7, None, true_root(7)),
        (HASHES[3], 3, 7, GOOD_PROOF[:-1], true_root(7)),  # too short
        (HASHES[3], 3, 7, (*GOOD_PROOF, GOOD_PROOF[0]), true_root(7)),  # too long
        (HASHES[3], 3, 7, (GOOD_PROOF[0][:16], *GOOD_PROOF[1:]), true_root(7)),
        (HASHES[3], 3, 7, (*GOOD_PROOF[:-1], None), true_root(7)),
        (HASHES[3], 3, 7, (b"", *GOOD_PROOF), true_root(7)),
        (HASHES[3], 3, 7, tuple(reversed(GOOD_PROOF)), true_root(7)),
        (HASHES[0], 0, 1, "", HASHES[0]),  # an empty str is not an empty proof
    ],
)
def test_verify_inclusion_rejects_malformed_input(args: tuple[object, ...]) -> None:
    assert verify_inclusion(*GOOD)
    assert verify_inclusion(*args) is False  # type: ignore[arg-type]


GOOD_CPROOF = consistency_proof(HASHES, 3, 7)
GOOD_C = (3, 7, true_root(3), true_root(7), GOOD_CPROOF)


@pytest.mark.parametrize(
    "args",
    [
        (7, 3, true_root(7), true_root(3), GOOD_CPROOF),  # sizes out of order
        (3, 7, true_root(3), true_root(7), ()),
        (3, 7, true_root(7), true_root(3), GOOD_CPROOF),  # roots swapped
        (3, 3, true_root(3), true_root(3), GOOD_CPROOF),  # equal sizes, non-empty proof
        (3, 3, true_root(3), true_root(4), ()),  # equal sizes, different roots
        (0, 7, EMPTY_ROOT, true_root(7), GOOD_CPROOF),  # empty tree, non-empty proof
        (-3, 7, true_root(3), true_root(7), GOOD_CPROOF),
        (3, False, true_root(3), true_root(7), GOOD_CPROOF),
        (3, 7, true_root(3)[:31], true_root(7), GOOD_CPROOF),
        (3, 7, true_root(3), None, GOOD_CPROOF),
        (3, 7, true_root(3), true_root(7), GOOD_CPROOF[:-1]),
        (3, 7, true_root(3), true_root(7), (*GOOD_CPROOF, GOOD_CPROOF[0])),
        (3, 7, true_root(3), true_root(7), (true_root(3), *GOOD_CPROOF)),
        (3, 7, true_root(3), true_root(7), (*GOOD_CPROOF[:-1], 7)),
        (3, 7, true_root(3), true_root(7), "not a proof"),
        (3, 3, true_root(3), true_root(3), ""),  # an empty str is not an empty proof
        (3, 3, true_root(3), true_root(3), b""),
    ],
)
def test_verify_consistency_rejects_malformed_input(args: tuple[object, ...]) -> None:
    assert verify_consistency(*GOOD_C)
    assert verify_consistency(*args) is False  # type: ignore[arg-type]


# --- Tampering ----------------------------------------------------------------


def flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@st.composite
def inclusion_cases(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, 100))
    return draw(st.integers(0, size - 1)), size


@settings(max_examples=200)
@given(
    case=inclusion_cases(),
    which=st.sampled_from(["proof", "leaf", "root", "index"]),
    data=st.data(),
)
def test_any_flipped_bit_breaks_inclusion(
    case: tuple[int, int], which: str, data: st.DataObject
) -> None:
    index, size = case
    proof = list(inclusion_proof(HASHES, index, size))
    leaf, tree_root = HASHES[index], true_root(size)
    assert verify_inclusion(leaf, index, size, proof, tree_root)
    if which == "proof":
        if not proof:
            return
        i = data.draw(st.integers(0, len(proof) - 1))
        proof[i] = flip(proof[i], data.draw(st.integers(0, 255)))
    elif which == "leaf":
        leaf = flip(leaf, data.draw(st.integers(0, 255)))
    elif which == "root":
        tree_root = flip(tree_root, data.draw(st.integers(0, 255)))
    else:
        index ^= 1 << data.draw(st.integers(0, 62))
    assert not verify_inclusion(leaf, index, size, proof, tree_root)


@st.composite
def consistency_cases(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(2, 100))
    return draw(st.integers(1, new - 1)), new


@settings(max_examples=200)
@given(case=consistency_cases(), which=st.sampled_from(["proof", "old", "new"]), data=st.data())
def test_any_flipped_bit_breaks_consistency(
    case: tuple[int, int], which: str, data: st.DataObject
) -> None:
    old, new = case
    proof = list(consistency_proof(HASHES, old, new))
    old_root, new_root = true_root(old), true_root(new)
    assert verify_consistency(old, new, old_root, new_root, proof)
    bit = data.draw(st.integers(0, 255))
    if which == "proof":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof[i] = flip(proof[i], bit)
    elif which == "old":
        old_root = flip(old_root, bit)
    else:
        new_root = flip(new_root, bit)
    assert not verify_consistency(old, new, old_root, new_root, proof)


def test_a_flipped_size_is_never_accepted_with_a_proof_that_is_not_its_own() -> None:
    # The tree size is authenticated by the root (which a checkpoint signs
    # together with the size), so the claim to check is: given the true root
    # for a tampered size, the old proof never verifies unless it really is
    # the proof for that size. Exhaustive over sizes 1..64 and 7 size bits.
    for size in range(1, 65):
        for index in range(size):
            proof = inclusion_proof(HASHES, index, size)
            for bit in range(7):
                other = size ^ (1 << bit)
                if verify_inclusion(HASHES[index], index, other, proof, true_root(other)):
                    assert proof == inclusion_proof(HASHES, index, other)
        for old in range(1, size + 1):
            proof = consistency_proof(HASHES, old, size)
            for bit in range(7):
                o, n = old ^ (1 << bit), size ^ (1 << bit)
                if verify_consistency(o, size, true_root(o), true_root(size), proof):
                    assert proof == consistency_proof(HASHES, o, size)
                if n >= old and verify_consistency(old, n, true_root(old), true_root(n), proof):
                    assert proof == consistency_proof(HASHES, old, n)


def test_an_inclusion_proof_alone_does_not_pin_the_size() -> None:
    # Documented limitation of RFC 9162 proofs, kept here so nobody relies on
    # the proof for the size: index 0 has the same path shape in trees of 5
    # and 7 leaves, so the size-5 proof and root also "verify" at size 7.
    proof = inclusion_proof(HASHES, 0, 5)
    assert verify_inclusion(HASHES[0], 0, 7, proof, true_root(5))
    # With the root that really belongs to size 7, it does not.
    assert not verify_inclusion(HASHES[0], 0, 7, proof, true_root(7))

"""RFC 9162 Merkle hashing: the published CT vectors, and the accumulator agrees with the tree."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable

import pytest

from guarded_rl.audit.merkle import (
    EMPTY_ROOT,
    MerkleAccumulator,
    leaf_hash,
    merkle_root,
    node_hash,
)

# Leaves and roots of the Certificate Transparency reference tests (RFC 6962 / 9162), as used by
# google/certificate-transparency and transparency-dev/merkle.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
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


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 literally: recursive, split at the largest power of two below n."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    left, right = _reference_root(leaves[:k]), _reference_root(leaves[k:])
    return hashlib.sha256(b"\x01" + left + right).digest()


def _random_leaves(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(0, 48)) for _ in range(n)]


def test_empty_root_is_sha256_of_nothing() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert merkle_root([]) == EMPTY_ROOT
    assert MerkleAccumulator().root() == EMPTY_ROOT
    assert MerkleAccumulator().size == 0


def test_leaf_and_node_hash_are_domain_separated() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert (
        node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    )
    # A node's children concatenated, offered as a leaf, must not reproduce the node.
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert leaf_hash(a + b) != node_hash(a, b)


@pytest.mark.parametrize("size", range(len(CT_ROOTS)))
def test_ct_reference_vectors(size: int) -> None:
    assert merkle_root(CT_LEAVES[:size]).hex() == CT_ROOTS[size]


def test_accumulator_matches_ct_vectors_at_every_size() -> None:
    acc = MerkleAccumulator()
    assert acc.root().hex() == CT_ROOTS[0]
    for size, data in enumerate(CT_LEAVES, start=1):
        acc.append(data)
        assert acc.size == size
        assert acc.root().hex() == CT_ROOTS[size]


def test_iterative_root_matches_the_recursive_definition() -> None:
    for n in (*range(0, 40), 63, 64, 65, 127, 128, 129, 1000, 1025):
        leaves = _random_leaves(n, seed=n)
        assert merkle_root(leaves) == _reference_root(leaves), n


def test_accumulator_equals_merkle_root_for_every_size_up_to_70() -> None:
    leaves = _random_leaves(70, seed=7)
    acc = MerkleAccumulator()
    assert acc.root() == merkle_root([])
    for n, data in enumerate(leaves, start=1):
        acc.append(data)
        assert acc.size == n
        assert acc.root() == merkle_root(leaves[:n]), n


def test_accumulator_state_is_logarithmic() -> None:
    acc = MerkleAccumulator()
    for i in range(1000):
        acc.append(i.to_bytes(4, "big"))
        assert len(acc._stack) == bin(acc.size).count("1")


def test_different_data_gives_a_different_root() -> None:
    leaves = _random_leaves(37, seed=3)
    root = merkle_root(leaves)
    for i in (0, 17, 36):
        changed = list(leaves)
        changed[i] = changed[i] + b"!"
        assert merkle_root(changed) != root
    assert merkle_root(leaves[:-1]) != root
    assert merkle_root([*leaves, b""]) != root


def test_order_matters() -> None:
    leaves = [b"first", b"second", b"third"]
    assert merkle_root(leaves) != merkle_root([b"second", b"first", b"third"])
    assert merkle_root(leaves) != merkle_root(list(reversed(leaves)))


def test_100k_leaves_is_fast() -> None:
    leaves = [i.to_bytes(8, "big") * 8 for i in range(100_000)]
    best = min(_timed(merkle_root, leaves) for _ in range(3))
    assert best < 0.5, f"merkle_root on 100k leaves took {best:.3f}s"


def _timed(fn: Callable[[list[bytes]], bytes], arg: list[bytes]) -> float:
    start = time.perf_counter()
    fn(arg)
    return time.perf_counter() - start

"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing for the audit log.

The log's hash chain catches edits at their line; a Merkle root over the same entries lets a
signed tree head commit to the whole log at once, in the format other transparency tooling
(and a later inclusion/consistency proof) already understands. Leaves and interior nodes are
domain-separated (0x00 / 0x01 prefixes) so a leaf can never be passed off as a node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["EMPTY_ROOT", "MerkleAccumulator", "leaf_hash", "merkle_root", "node_hash"]

#: MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1).
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()

_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d): the prefix keeps leaves distinct from interior nodes."""
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(_NODE + left + right).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """MTH over the leaf *data* `leaves` (leaf hashing is applied here).

    RFC 9162 defines the tree recursively, splitting at the largest power of two below n. Pairing
    neighbours level by level and promoting an unpaired last node unchanged builds exactly that
    left-balanced tree, without recursion and with one hash call per node.
    """
    if not leaves:
        return EMPTY_ROOT
    sha256 = hashlib.sha256
    level = [sha256(_LEAF + data).digest() for data in leaves]
    while len(level) > 1:
        paired = [
            sha256(_NODE + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


class MerkleAccumulator:
    """Incremental root for an append-only log.

    O(log n) state (a stack of perfect-subtree roots) and O(1) amortised append. The stack holds
    one root per set bit of `size`, largest (leftmost) first, so the log never has to be re-read
    to extend its root or sign a new head.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._stack: list[bytes] = []
        self._size = 0

    def append(self, data: bytes) -> None:
        """Add one leaf (its data; leaf hashing is applied here), merging equal-sized subtrees."""
        digest = leaf_hash(data)
        n = self._size
        while n & 1:
            digest = node_hash(self._stack.pop(), digest)
            n >>= 1
        self._stack.append(digest)
        self._size += 1

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def root(self) -> bytes:
        """The MTH of everything appended; equals `merkle_root` of the same data."""
        if not self._stack:
            return EMPTY_ROOT
        digest = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            digest = node_hash(left, digest)
        return digest

    def __repr__(self) -> str:
        return f"MerkleAccumulator(size={self._size}, root={self.root().hex()})"

"""Signing the log's head: Merkle root over entry hashes, Ed25519 signature, `audit.head`.

The runner signs a new head after every update and at the end of a run. The private key
lives in the user's key directory by default (`$XDG_DATA_HOME/guarded-rl/keys/`, recorded in
`run.toml`), so whoever can rewrite the log
cannot also re-sign it; `audit.pub` in the run directory is a convenience copy of the public
key (pass `--public-key` from an independent copy to `audit verify` for real assurance).
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from guarded_rl.audit.head import SignedHead, sign_head, write_head
from guarded_rl.audit.log import AuditLog
from guarded_rl.audit.merkle import MerkleAccumulator


def origin_of(run_id: str) -> str:
    return f"guarded-rl/{run_id}"


class HeadSigner:
    """Follows an `AuditLog` with a Merkle accumulator and writes signed heads."""

    def __init__(self, log: AuditLog, key: Ed25519PrivateKey, origin: str, head_path: Path) -> None:
        self.log = log
        self.key = key
        self.origin = origin
        self.head_path = Path(head_path)
        self._tree = MerkleAccumulator()

    def __repr__(self) -> str:  # never show the key
        return f"HeadSigner(origin={self.origin!r}, size={self._tree.size})"

    def sign(self) -> SignedHead:
        """Make every entry durable, then sign and atomically write the head covering them."""
        self.log.sync()
        hashes = self.log.entries_hashes
        for digest in hashes[self._tree.size :]:
            self._tree.append(bytes.fromhex(digest))
        head = sign_head(
            self.key, origin=self.origin, tree_size=self._tree.size, root=self._tree.root()
        )
        write_head(self.head_path, head)
        return head

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
from guarded_rl.audit.log import LOG_FILE, AuditLog
from guarded_rl.audit.merkle import MerkleAccumulator

HEAD_FILE = "audit.head"
PUBLIC_KEY_FILE = "audit.pub"


def default_key_file(run_dir: Path) -> Path:
    """`runs/run-X` → `runs/run-X.key`: where runs made before the per-user key directory
    kept their key (only a fallback for a `run.toml` that names none)."""
    run_dir = Path(run_dir)
    return run_dir.parent / f"{run_dir.name}.key"


def user_key_dir() -> Path:
    """`$XDG_DATA_HOME/guarded-rl/keys` (default `~/.local/share/guarded-rl/keys`): the
    user's own, outside any run directory and its parent, so that whoever can rewrite (or
    copy) a run's folder does not also get the key that signs it."""
    import os

    base = os.environ.get("XDG_DATA_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "guarded-rl" / "keys"


def new_default_key_file(run_dir: Path) -> Path:
    """A new run's key: `<user key dir>/<run dir name>-<random>.key`, a name never reused.
    The directory is created 0700 (and narrowed to it if it already exists)."""
    import os
    import secrets

    keys = user_key_dir()
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(keys, 0o700)
    name = Path(run_dir).resolve().name or "run"
    return keys / f"{name}-{secrets.token_hex(6)}.key"


def recorded_key_file(run_dir: Path) -> Path:
    """The key file `run.toml` names (what `run --key-file` chose), else the default place."""
    import tomllib

    run_dir = Path(run_dir)
    try:
        data = tomllib.loads((run_dir / "run.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return default_key_file(run_dir)
    value = data.get("run", {}).get("key_file")
    return Path(value) if isinstance(value, str) and value else default_key_file(run_dir)


def recorded_store_key_file(run_dir: Path) -> Path:
    """The feedback store's key file `run.toml` names, else the one beside the signing key."""
    import tomllib

    from guarded_rl.consent.store_key import store_key_path

    run_dir = Path(run_dir)
    try:
        data = tomllib.loads((run_dir / "run.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        data = {}
    value = data.get("run", {}).get("store_key_file")
    if isinstance(value, str) and value:
        return Path(value)
    return store_key_path(recorded_key_file(run_dir))


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

    @classmethod
    def for_run(
        cls,
        run_dir: Path,
        key: Ed25519PrivateKey,
        run_id: str,
        *,
        allow_unsigned: bool = False,
    ) -> HeadSigner:
        """Reopen a run's log for appending, with a signer for its head.

        The one gate of every writer of an existing log: the log must prove against its last
        signed head and `key` must be the run's recorded key (`appendable`), so a forged history
        is never re-signed. `allow_unsigned`: `audit repair` re-signing a crash's tail."""
        from guarded_rl.audit.appendable import check_key, prove_signed_log

        run_dir = Path(run_dir)
        signed = prove_signed_log(run_dir, allow_unsigned=allow_unsigned)
        check_key(key, signed, source=str(run_dir / LOG_FILE))
        return cls(AuditLog(run_dir / LOG_FILE), key, origin_of(run_id), run_dir / HEAD_FILE)

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

"""The feedback store's own key, kept outside the database, wrapping every key inside it.

The per-person AES keys (`subject_keys`) and the pseudonym HMAC key (`store_secrets`) sit in
`feedback.sqlite` beside the data they protect. Stored raw, anyone who can read (or copy)
that one file could decrypt every person's id and feedback. So each of them is stored wrapped
with AES-256-GCM under a store key that lives in its own 0600 file with the run's other
secrets (next to the signing key, path recorded in `run.toml`): a copy of the database alone
reveals nothing, and without the key file the store fails closed.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from guarded_rl.errors import AuditError
from guarded_rl.secret_file import read_secret_file, write_secret_file

_KEY_BYTES = 32
_NONCE_BYTES = 12


class StoreKey:
    """The 32-byte store key; never shown in a repr or an error."""

    __slots__ = ("_aead", "source")

    def __init__(self, raw: bytes, source: str) -> None:
        self._aead = AESGCM(raw)
        self.source = source

    def __repr__(self) -> str:
        return f"StoreKey(source={self.source!r})"

    @classmethod
    def ephemeral(cls) -> StoreKey:
        """For `:memory:` stores: nothing outlives the process anyway."""
        return cls(AESGCM.generate_key(bit_length=256), ":memory:")

    def wrap(self, secret: bytes, label: str) -> bytes:
        """nonce || AES-GCM(secret), bound to `label` (a subject or a secret's name)."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret, label.encode("utf-8"))

    def unwrap(self, blob: bytes, label: str, *, store: str) -> bytes:
        try:
            return self._aead.decrypt(
                blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], label.encode("utf-8")
            )
        except (InvalidTag, ValueError):
            raise AuditError(
                "the store key does not open this feedback store (another run's key, or "
                "the store was swapped)",
                file=store,
                field="store_key_file",
                got=self.source,
            ) from None


def default_store_key_file(db_path: str | Path) -> Path:
    """For a store opened without a key file: `<db>.key` beside it (library use)."""
    path = Path(db_path)
    return path.with_name(path.name + ".key")


def create_store_key(path: Path) -> StoreKey:
    """A new random store key at `path`, mode 0600 from creation on; never over another."""
    path = Path(path)
    raw = AESGCM.generate_key(bit_length=256)
    write_secret_file(path, "store key", raw.hex().encode() + b"\n")
    return StoreKey(raw, str(path))


def load_store_key(path: Path) -> StoreKey:
    """Read the store key, refusing a missing, odd or group/other-readable file (fail closed)."""
    path = Path(path)
    text = read_secret_file(
        path,
        "store key",
        missing="feedback store key missing: the store cannot be opened without it",
        missing_expected="the run's store key file (see store_key_file in run.toml)",
        follow_links=False,
    )[:200]
    try:
        raw = bytes.fromhex(text.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raw = b""
    if len(raw) != _KEY_BYTES:
        raise AuditError("not a store key", file=str(path), expected="64 hex digits")
    return StoreKey(raw, str(path))


def open_store_key(db_path: str, key_file: Path | None, *, new_store: bool) -> StoreKey:
    """The key for the store at `db_path`: created with a new store, else it must exist."""
    if db_path == ":memory:":
        return StoreKey.ephemeral()
    path = Path(key_file) if key_file is not None else default_store_key_file(db_path)
    if new_store and not path.exists():
        return create_store_key(path)
    return load_store_key(path)


def create_private_file(path: Path) -> None:
    """Create an empty database file 0600 before SQLite opens it: its -wal and -shm files
    take the database file's mode, so no byte of the store is ever group/other-readable."""
    path = Path(path)
    if path.exists():
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return
    except OSError:
        return  # a missing folder: opening the store reports it as a one-line error
    os.chmod(path, 0o600)  # exact, whatever the umask

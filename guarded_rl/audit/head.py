"""Signed tree heads: an Ed25519 signature over the audit log's size and Merkle root.

In the spirit of C2SP tlog-checkpoint: a head names the log (origin), how many entries it
commits to and their RFC 9162 root. Anyone holding the public key can check that a log they
were given is the one the run signed, so rewriting the log means forging a signature, not just
recomputing hashes. Private keys live in 0600 files and never appear in a repr or an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from guarded_rl.atomic import atomic_write, fsync_dir
from guarded_rl.errors import AuditError
from guarded_rl.secret_file import read_secret_file, write_secret_file

__all__ = [
    "SignedHead",
    "generate_signing_key",
    "key_id",
    "load_public_key",
    "load_signing_key",
    "read_head",
    "sign_head",
    "verify_head",
    "write_head",
    "write_public_key",
]

_ROOT_BYTES = 32
_SIGNATURE_BYTES = 64
_KEY_ID_HEX = 16
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
_FIELDS = ("origin", "tree_size", "root_hash", "timestamp", "key_id", "signature")


@dataclass(frozen=True, slots=True)
class SignedHead:
    """A checkpoint of the audit log: what was committed to, when, and by which key."""

    origin: str
    tree_size: int
    root_hash: str
    timestamp: float
    key_id: str
    signature: str

    def body(self) -> bytes:
        """The exact bytes signed: one field per line, so no field can bleed into the next."""
        root_b64 = base64.b64encode(bytes.fromhex(self.root_hash)).decode("ascii")
        return f"{self.origin}\n{self.tree_size}\n{root_b64}\n{self.timestamp:.6f}\n".encode()

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces, final newline): equal heads are equal bytes."""
        fields = {name: getattr(self, name) for name in _FIELDS}
        return json.dumps(fields, sort_keys=True, separators=(",", ":")) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str) -> SignedHead:
        """Parse and strictly validate a head; any defect is an `AuditError` naming `source`."""
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise AuditError(f"signed head is not valid JSON ({exc})", file=source) from None
        if not isinstance(raw, dict):
            raise AuditError("signed head must be a JSON object", file=source)
        missing = [name for name in _FIELDS if name not in raw]
        if missing:
            raise AuditError(f"signed head is missing field(s): {', '.join(missing)}", file=source)
        extra = sorted(name for name in raw if name not in _FIELDS)
        if extra:
            raise AuditError(
                f"signed head has unexpected field(s): {', '.join(extra)}", file=source
            )
        return cls(
            origin=_check_origin(raw["origin"], source),
            tree_size=_check_tree_size(raw["tree_size"], source),
            root_hash=_check_hex(raw["root_hash"], "root_hash", _HEX64, source),
            timestamp=_check_timestamp(raw["timestamp"], source),
            key_id=_check_hex(raw["key_id"], "key_id", _HEX16, source),
            signature=_check_signature(raw["signature"], source),
        )


def _shown(value: Any) -> Any:
    """Keep error lines short when a field holds something huge."""
    text = repr(value)
    return value if len(text) <= 80 else text[:77] + "..."


def _bad(field: str, value: Any, source: str, message: str, expected: str) -> AuditError:
    return AuditError(message, file=source, field=field, got=_shown(value), expected=expected)


def _check_origin(value: Any, source: str) -> str:
    # A newline in the origin would let it impersonate the other lines of the signed body.
    if not isinstance(value, str) or not value or "\n" in value:
        raise _bad("origin", value, source, "bad origin", "a non-empty string without newlines")
    return value


def _check_tree_size(value: Any, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad("tree_size", value, source, "bad tree size", "a non-negative integer")
    return value


def _check_timestamp(value: Any, source: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise _bad("timestamp", value, source, "bad timestamp", "non-negative seconds since epoch")
    return float(value)


def _check_hex(value: Any, field: str, pattern: re.Pattern[str], source: str) -> str:
    # Lower case only: the signature covers the decoded bytes, so one head must have one spelling.
    if not isinstance(value, str) or not pattern.fullmatch(value):
        length = pattern.pattern.rsplit("{", 1)[1].rstrip("}")
        raise _bad(field, value, source, "bad hex", f"{length} lower-case hex digits")
    return value


def _check_signature(value: Any, source: str) -> str:
    expected = f"standard base64 of a {_SIGNATURE_BYTES}-byte Ed25519 signature"
    if not isinstance(value, str):
        raise _bad("signature", value, source, "bad signature encoding", expected)
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("signature", value, source, "bad base64", expected) from None
    if len(decoded) != _SIGNATURE_BYTES or base64.b64encode(decoded).decode("ascii") != value:
        raise _bad("signature", value, source, "bad signature encoding", expected)
    return value


# -- keys --------------------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the raw public key: names the key without shipping it."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:_KEY_ID_HEX]


def generate_signing_key(path: Path) -> Ed25519PrivateKey:
    """Create a new key at `path` (PKCS8 PEM, mode 0600 from creation on); never overwrite one.

    Opening with O_EXCL at 0600 means the key is never briefly world-readable and an existing
    key (whose heads others may already trust) cannot be silently replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_secret_file(path, "signing key", pem)
    fsync_dir(path.parent)
    return key


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Read the private key, refusing one that group or other users could read."""
    data = read_secret_file(Path(path), "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # The library's message is dropped on purpose: nothing derived from key bytes is shown.
        raise AuditError(
            "not a readable unencrypted PEM private key", file=str(path), expected="Ed25519 PKCS8"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditError("not an Ed25519 private key", file=str(path), expected="Ed25519")
    return key


def public_key_pem(key: Ed25519PublicKey) -> str:
    """The verification key as SubjectPublicKeyInfo PEM (what `audit.pub` and `run_started`
    hold)."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def write_public_key(path: Path, key: Ed25519PublicKey) -> None:
    """Publish the verification key (SubjectPublicKeyInfo PEM), atomically."""
    atomic_write(Path(path), public_key_pem(key).encode())


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a verification key written by `write_public_key`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AuditError("public key missing", file=str(path)) from None
    except OSError as exc:
        raise AuditError(f"cannot read public key ({exc.strerror})", file=str(path)) from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise AuditError(
            "not a readable PEM public key", file=str(path), expected="Ed25519 SubjectPublicKeyInfo"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditError("not an Ed25519 public key", file=str(path), expected="Ed25519")
    return key


# -- heads -------------------------------------------------------------------------------------


def sign_head(
    private_key: Ed25519PrivateKey,
    *,
    origin: str,
    tree_size: int,
    root: bytes,
    timestamp: float | None = None,
) -> SignedHead:
    """Sign (origin, size, root, time); the time is rounded to the microseconds the body carries."""
    if not origin or "\n" in origin:
        raise ValueError("origin must be a non-empty string without newlines")
    if isinstance(tree_size, bool) or tree_size < 0:
        raise ValueError("tree_size must be a non-negative integer")
    if len(root) != _ROOT_BYTES:
        raise ValueError(f"root must be {_ROOT_BYTES} bytes, got {len(root)}")
    when = round(time.time() if timestamp is None else float(timestamp), 6)
    if not math.isfinite(when) or when < 0:
        raise ValueError("timestamp must be finite and non-negative")
    unsigned = SignedHead(
        origin=origin,
        tree_size=tree_size,
        root_hash=root.hex(),
        timestamp=when,
        key_id=key_id(private_key.public_key()),
        signature="",
    )
    signature = private_key.sign(unsigned.body())
    return SignedHead(
        origin=origin,
        tree_size=tree_size,
        root_hash=unsigned.root_hash,
        timestamp=when,
        key_id=unsigned.key_id,
        signature=base64.b64encode(signature).decode("ascii"),
    )


def verify_head(head: SignedHead, public_key: Ed25519PublicKey) -> bool:
    """True only if `public_key` is the head's key and its signature covers this exact body."""
    if head.key_id != key_id(public_key):
        return False
    try:
        signature = base64.b64decode(head.signature, validate=True)
        public_key.verify(signature, head.body())
    except (InvalidSignature, binascii.Error, ValueError, TypeError, AttributeError):
        return False
    return True


def write_head(path: Path, head: SignedHead) -> None:
    """Replace the head file atomically: readers see the old head or the new one, never half."""
    atomic_write(Path(path), head.to_json().encode("utf-8"))


def read_head(path: Path) -> SignedHead:
    """Load and validate the head at `path`; its signature is checked by `verify_head`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AuditError("no signed head", file=str(path)) from None
    except UnicodeDecodeError:
        raise AuditError("signed head is not UTF-8 text", file=str(path)) from None
    except OSError as exc:
        raise AuditError(f"cannot read signed head ({exc.strerror})", file=str(path)) from None
    return SignedHead.from_json(text, source=str(path))

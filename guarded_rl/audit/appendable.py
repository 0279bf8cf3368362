"""The one check before anything appends to, and signs, an existing run's audit log.

Recomputing the plain SHA-256 chain needs no key, so a chain that links is no proof: a writer
that only checked the chain would re-sign a forged history and make it verify. Every writer
(a resumed run, consent, feedback import, an offline review decision, rollback, repair)
therefore first proves the log against its last signed head: the chain, a head signed by the
key the log recorded in `run_started` (and published in `audit.pub`), a tree size no larger
than the log and the Merkle root of that signed prefix. It also checks that the private key
it is about to sign with is that same key, so another run's key cannot brick this one.

Entries after the signed head (complete and chained, as a crash between writing and signing
leaves them) are refused by ordinary writers: signing them silently would launder entries
nobody signed. Only `audit repair` accepts them, and records in a `repair` entry which
entries it re-signed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from guarded_rl.audit.head import (
    SignedHead,
    key_id,
    load_public_key,
    load_signing_key,
    read_head,
    verify_head,
)
from guarded_rl.audit.log import scan_log
from guarded_rl.audit.merkle import merkle_root
from guarded_rl.errors import AuditError, InputError, IntegrityError
from guarded_rl.rundir.paths import HEAD_FILE, LOG_FILE, PUBLIC_KEY_FILE, RunPaths

_REPAIR_HINT = "`guarded-rl audit verify` says more"


@dataclass(frozen=True, slots=True)
class SignedLog:
    """A log proven against its signed head: complete-entry hashes, the head, the key."""

    hashes: list[str]
    head: SignedHead
    started: dict[str, Any]  # the run_started payload (inside the signed prefix)
    public_key: Ed25519PublicKey
    torn: bool  # the last line is incomplete (only repair accepts this)

    @property
    def unsigned(self) -> int:
        """Complete entries after the signed head."""
        return len(self.hashes) - self.head.tree_size


def _refuse(run_dir: Path, reason: str) -> IntegrityError:
    return IntegrityError(
        f"audit log does not verify against its signed head, refusing to write: {reason} "
        f"({_REPAIR_HINT})",
        file=str(run_dir / LOG_FILE),
    )


def prove_signed_log(
    run_dir: str | Path, *, allow_torn: bool = False, allow_unsigned: bool = False
) -> SignedLog:
    """Prove the log against its last signed head, or raise `IntegrityError` (exit 3).

    Reads only; nothing is written whatever the outcome. `allow_torn`/`allow_unsigned`: for
    `audit repair`, a torn last line and complete entries after the head that chain from it.
    """
    run_dir = Path(run_dir)
    log_path = run_dir / LOG_FILE
    if not log_path.is_file():
        raise InputError("not a run directory (no audit.jsonl)", field="RUN_DIR", got=str(run_dir))
    scan = scan_log(log_path)
    torn = False
    if scan.problem is not None:
        if not (scan.problem.torn and allow_torn):
            hint = "; `guarded-rl audit repair` removes it" if scan.problem.torn else ""
            raise _refuse(run_dir, f"seq {scan.problem.seq}: {scan.problem.reason}{hint}")
        torn = True
    started = _started(log_path, run_dir)
    public_key = _recorded_public_key(started, run_dir)
    try:
        head = read_head(run_dir / HEAD_FILE)
    except AuditError as exc:
        raise _refuse(run_dir, f"head: {exc.one_line()}") from None
    if not verify_head(head, public_key):
        raise _refuse(run_dir, "head: signature does not verify with the key recorded at run start")
    if head.tree_size > len(scan.hashes):
        raise _refuse(
            run_dir,
            f"the signed head covers {head.tree_size} entries but the log holds "
            f"{len(scan.hashes)} complete ones (entries removed or cut)",
        )
    root = merkle_root([bytes.fromhex(h) for h in scan.hashes[: head.tree_size]])
    if root != bytes.fromhex(head.root_hash):
        raise _refuse(run_dir, "head: Merkle root does not match the log (entries rewritten)")
    if head.tree_size < len(scan.hashes) and not allow_unsigned:
        raise _refuse(
            run_dir,
            f"seq {head.tree_size}: {len(scan.hashes) - head.tree_size} entries after the last "
            "signed head (a crash before signing: `guarded-rl audit repair` re-signs them and "
            "records that it did; otherwise forged)",
        )
    return SignedLog(scan.hashes, head, started, public_key, torn)


def run_signing_key(
    run_dir: str | Path, key_file: str | Path | None = None, *, signed: SignedLog | None = None
) -> Ed25519PrivateKey:
    """The run's private key (`key_file`, else the one `run.toml` records), after proving the
    log (`signed`: already proven under the same lock) and that the key is the run's own.

    Every command that signs an existing run's log loads its key here, before writing."""
    run_dir = Path(run_dir)
    path = Path(key_file) if key_file else RunPaths(run_dir).recorded_key_file()
    key = load_signing_key(path)
    check_key(key, signed if signed is not None else prove_signed_log(run_dir), source=str(path))
    return key


def check_key(key: Ed25519PrivateKey, signed: SignedLog, *, source: str) -> None:
    """Refuse a private key that is not the one this run recorded (before any write)."""
    recorded = key_id(signed.public_key)
    if key_id(key.public_key()) != recorded:
        raise InputError(
            "signing key is not this run's key (another run's key would make its log unverifiable)",
            file=source,
            field="key_file",
            got=key_id(key.public_key()),
            expected=f"the key with id {recorded} recorded in run_started",
        )


def _started(log_path: Path, run_dir: Path) -> dict[str, Any]:
    with log_path.open("rb") as fh:
        line = fh.readline()
    try:
        entry = json.loads(line)
        if entry["type"] != "run_started" or not isinstance(entry["payload"], dict):
            raise KeyError("type")
    except (ValueError, KeyError, TypeError):
        raise _refuse(run_dir, "seq 0: the log does not start with run_started") from None
    return entry["payload"]


def _recorded_public_key(started: dict[str, Any], run_dir: Path) -> Ed25519PublicKey:
    """The key `run_started` recorded; `audit.pub`, when present, must be the same key."""
    pem = started.get("public_key")
    try:
        key = load_pem_public_key(pem.encode()) if isinstance(pem, str) else None
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PublicKey) or key_id(key) != started.get("key_id"):
        raise _refuse(run_dir, "seq 0: run_started records no valid Ed25519 public key")
    published = run_dir / PUBLIC_KEY_FILE
    if published.exists():
        try:
            other = load_public_key(published)
        except AuditError as exc:
            raise _refuse(run_dir, exc.one_line()) from None
        if key_id(other) != key_id(key):
            raise _refuse(run_dir, f"{published}: differs from the key recorded at run start")
    return key

"""`guarded-rl audit repair`: recover from a crash, and nothing else.

A process killed mid-write can leave a torn last line, and complete entries written after the
last signed head. Repair first proves everything up to the last signed head (chain, signature
with the key recorded at run start, size, Merkle root; see `appendable`) and that the key is
the run's own; only then does it touch the file: it drops the torn tail, re-signs the complete
entries that chain from the signed prefix and appends a `repair` entry saying exactly what it
did. Anything else (a changed, removed or reordered entry, a head that does not verify, a
signed entry cut short) is refused with nothing changed: that is tampering, not a crash.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from guarded_rl.audit.appendable import prove_signed_log, run_signing_key
from guarded_rl.audit.log import LOG_FILE
from guarded_rl.audit.run_lock import run_lock
from guarded_rl.audit.signer import HeadSigner
from guarded_rl.errors import InputError, IntegrityError


def repair_run(run_dir: str | Path, *, key_file: Path | None = None) -> dict[str, Any]:
    run_dir = Path(run_dir)
    log_path = run_dir / LOG_FILE
    if not log_path.is_file():
        raise InputError("not a run directory (no audit.jsonl)", field="RUN_DIR", got=str(run_dir))
    with run_lock(run_dir):  # never repair under a live run: its tail is not torn, just new
        return _repair_locked(run_dir, log_path, key_file)


def _repair_locked(run_dir: Path, log_path: Path, key_file: Path | None) -> dict[str, Any]:
    try:
        signed = prove_signed_log(run_dir, allow_torn=True, allow_unsigned=True)
    except IntegrityError as exc:
        raise IntegrityError(f"not a crash, refusing to repair: {exc.message}") from None
    if not signed.torn and signed.unsigned == 0:
        return {"repaired": False}
    key = run_signing_key(run_dir, key_file, signed=signed)  # the right key, before any change
    removed = 0
    torn_seq = None
    if signed.torn:  # decided: only now are bytes removed, and only the incomplete last line
        torn_seq = len(signed.hashes)
        size = log_path.stat().st_size
        keep = log_path.read_bytes().rfind(b"\n") + 1
        with log_path.open("r+b") as fh:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
        removed = size - keep
    signer = HeadSigner.for_run(
        run_dir, key, str(signed.started.get("run_id")), allow_unsigned=True
    )
    payload = {
        "torn_tail_removed_bytes": removed,
        "torn_seq": torn_seq,
        "resigned_from_seq": signed.head.tree_size,
        "resigned_to_seq": len(signed.hashes) - 1,
    }
    signer.log.append("repair", payload)
    signer.sign()
    signer.log.close()
    return {"repaired": True, **payload}

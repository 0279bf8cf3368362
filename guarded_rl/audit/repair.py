"""`guarded-rl audit repair`: recover from a crash, and nothing else.

A process killed mid-write can leave a torn last line, and entries written after the last
signed head. Repair removes only a torn tail, re-signs complete entries with the run's key,
and appends a `repair` entry saying exactly what it did. A log whose complete entries do not
chain (a changed, removed or reordered entry) is refused: that is tampering, not a crash.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from guarded_rl.audit.head import load_signing_key, read_head
from guarded_rl.audit.log import scan_log
from guarded_rl.audit.run_lock import run_lock
from guarded_rl.audit.signer import HEAD_FILE, HeadSigner, recorded_key_file
from guarded_rl.errors import AuditError, InputError, IntegrityError


def repair_run(run_dir: str | Path, *, key_file: Path | None = None) -> dict[str, Any]:
    run_dir = Path(run_dir)
    log_path = run_dir / "audit.jsonl"
    if not log_path.is_file():
        raise InputError("not a run directory (no audit.jsonl)", field="RUN_DIR", got=str(run_dir))
    with run_lock(run_dir):  # never repair under a live run: its tail is not torn, just new
        return _repair_locked(run_dir, log_path, key_file)


def _repair_locked(run_dir: Path, log_path: Path, key_file: Path | None) -> dict[str, Any]:
    scan = scan_log(log_path)
    removed = 0
    torn_seq = None
    if scan.problem is not None:
        if not scan.problem.torn:
            raise IntegrityError(
                f"not a crash: {scan.problem.reason}; refusing to repair",
                field="seq",
                got=scan.problem.seq,
            )
        torn_seq = scan.problem.seq
        size = log_path.stat().st_size
        keep = log_path.read_bytes().rfind(b"\n") + 1
        with log_path.open("r+b") as fh:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
        removed = size - keep
    try:
        signed_before = read_head(run_dir / HEAD_FILE).tree_size
    except AuditError:
        signed_before = 0
    if signed_before > len(scan.hashes):
        raise IntegrityError(
            "the signed head covers more entries than the log holds (entries removed)",
            field="seq",
            got=len(scan.hashes),
        )
    if torn_seq is None and signed_before == len(scan.hashes):
        return {"repaired": False}
    key = load_signing_key(Path(key_file) if key_file else recorded_key_file(run_dir))
    first = next(iter(_first_payload(log_path)), {})
    signer = HeadSigner.for_run(run_dir, key, first.get("run_id", "unknown"))
    payload = {
        "torn_tail_removed_bytes": removed,
        "torn_seq": torn_seq,
        "resigned_from_seq": signed_before,
        "resigned_to_seq": len(scan.hashes) - 1,
    }
    signer.log.append("repair", payload)
    signer.sign()
    signer.log.close()
    return {"repaired": True, **payload}


def _first_payload(log_path: Path) -> list[dict[str, Any]]:
    import json

    with log_path.open("rb") as fh:
        line = fh.readline()
    try:
        return [json.loads(line)["payload"]] if line.endswith(b"\n") else []
    except (ValueError, KeyError):
        return []

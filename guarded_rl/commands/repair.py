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

from guarded_rl.errors import InputError, IntegrityError
from guarded_rl.rundir.paths import RunPaths
from guarded_rl.rundir.session import RunSession, open_session


def repair_run(run_dir: str | Path, *, key_file: Path | None = None) -> dict[str, Any]:
    """Remove a torn last line and re-sign complete unsigned entries, on the record; refuse
    anything that is not a crash (never under a live run: its tail is not torn, just new)."""
    log_path = RunPaths(run_dir).log
    if not log_path.is_file():
        raise InputError("not a run directory (no audit.jsonl)", field="RUN_DIR", got=str(run_dir))
    opening = True
    try:
        with open_session(
            run_dir, key_file=key_file, writing=True, allow_torn=True, allow_unsigned=True
        ) as session:
            opening = False
            return _repair(session)
    except IntegrityError as exc:
        if not opening:
            raise
        raise IntegrityError(f"not a crash, refusing to repair: {exc.message}") from None


def _repair(session: RunSession) -> dict[str, Any]:
    signed = session.signed
    if not signed.torn and signed.unsigned == 0:
        return {"repaired": False}
    log_path = session.paths.log
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
    payload = {
        "torn_tail_removed_bytes": removed,
        "torn_seq": torn_seq,
        "resigned_from_seq": signed.head.tree_size,
        "resigned_to_seq": len(signed.hashes) - 1,
    }
    session.record([("repair", payload)])
    return {"repaired": True, **payload}

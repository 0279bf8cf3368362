"""Keep `summary.json` telling the live weights after the run ended.

`summary.json` is written when a run ends. A later `rollback`, or an offline `review approve`
that applies a stored candidate, changes which weights are live; without this the summary kept
naming the weights the run ended with. After such a change the summary's `live_sha256` is the
live weights again and `live` says which entry changed them; everything else still describes
the run as it ended (`describes`). The audit log stays the record; this file is a convenience.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from guarded_rl.atomic import atomic_write
from guarded_rl.audit.history import LIVE_CHANGING, RunHistory
from guarded_rl.rundir.paths import SUMMARY_FILE

#: a summary is a few tens of kB; anything far larger is not one we wrote
MAX_SUMMARY_BYTES = 16 * 1024 * 1024
DESCRIBES = (
    "the run as it ended; live_sha256 and live follow later rollbacks and review approvals "
    "(audit.jsonl is the record)"
)


def refresh_live_state(run_dir: str | Path, history: RunHistory | None = None) -> bool:
    """Rewrite `summary.json` (atomically) with the live weights of the log when they changed
    after the run; False when nothing changed or there is no summary we can read (a run that
    never finished, or a file that is not ours)."""
    path = Path(run_dir) / SUMMARY_FILE
    summary = _read(path)
    if summary is None:
        return False
    history = history or RunHistory.load(run_dir)
    if summary.get("live_sha256") == history.live_sha256() and "live" not in summary:
        return False  # still what the run ended with: nothing to say
    changes = [e for e in history.entries if e.type in LIVE_CHANGING]
    last = changes[-1] if changes else None
    summary["live_sha256"] = history.live_sha256()
    summary["live"] = {
        "sha256": history.live_sha256(),
        "updates": history.live_cycles(),
        "changed_by": None if last is None else _change(last.type, last.payload, last.seq),
    }
    summary["describes"] = DESCRIBES
    mode = stat.S_IMODE(path.lstat().st_mode)
    atomic_write(path, (json.dumps(summary, indent=2) + "\n").encode(), mode=mode)
    return True


def _read(path: Path) -> dict[str, Any] | None:
    try:
        info = path.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SUMMARY_BYTES:
        return None  # a link, a FIFO or a huge file: never followed or read
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _change(kind: str, payload: dict[str, Any], seq: int) -> dict[str, Any]:
    if kind == "rollback":
        return {"type": kind, "seq": seq, "to_update": payload.get("to_update")}
    return {"type": kind, "seq": seq, "cycle": payload.get("cycle")}

"""Append-only, hash-chained audit log (`audit.jsonl`).

Each line is one entry: `{"seq", "ts", "kind", "data", "prev", "hash"}`, where `hash` is the
SHA-256 of the canonical JSON of the other fields and `prev` is the previous entry's hash. Any
edit, deletion or reordering breaks the chain at the first line touched. Entries hold only
pseudonyms, counts and commitments, never text or identities.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from guarded_rl.errors import AuditError

GENESIS = "0" * 64


class AuditEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    ts: float
    kind: str
    data: dict[str, Any]
    prev: str
    hash: str


def canonical_json(value: Any) -> str:
    """Stable JSON: sorted keys, no spaces, no NaN (NaN becomes null)."""
    return json.dumps(_no_nan(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(seq: int, ts: float, kind: str, data: dict[str, Any], prev: str) -> str:
    body = canonical_json({"seq": seq, "ts": ts, "kind": kind, "data": data, "prev": prev})
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class AuditLog:
    """Writer for one run's audit log; reopening an existing log continues its chain."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        entries = read_log(self.path) if self.path.exists() else []
        self._seq = entries[-1].seq + 1 if entries else 0
        self._prev = entries[-1].hash if entries else GENESIS
        self._fh = self.path.open("a", encoding="utf-8")

    @property
    def head(self) -> str:
        """Hash of the last entry written (the genesis hash for an empty log)."""
        return self._prev

    def append(self, kind: str, data: dict[str, Any]) -> AuditEntry:
        data = _no_nan(data)
        ts = round(time.time(), 6)
        digest = entry_hash(self._seq, ts, kind, data, self._prev)
        entry = AuditEntry(seq=self._seq, ts=ts, kind=kind, data=data, prev=self._prev, hash=digest)
        self._fh.write(canonical_json(entry.model_dump()) + "\n")
        self._fh.flush()
        self._seq += 1
        self._prev = digest
        return entry

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_log(path: str | Path) -> list[AuditEntry]:
    """Parse every entry and check the chain; the first broken line raises `AuditError`."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise AuditError("no audit log", file=str(path)) from None
    entries: list[AuditEntry] = []
    prev = GENESIS
    for number, line in enumerate(lines, start=1):
        where = f"{path}:{number}"
        try:
            entry = AuditEntry.model_validate_json(line)
        except ValidationError:
            raise AuditError("not an audit entry", file=where, expected="one JSON entry") from None
        if entry.seq != number - 1:
            raise AuditError(
                "sequence gap", file=where, field="seq", got=entry.seq, expected=str(number - 1)
            )
        if entry.prev != prev:
            raise AuditError(
                "chain broken",
                file=where,
                field="prev",
                got=entry.prev[:12],
                expected=f"{prev[:12]} (hash of the previous entry)",
            )
        if entry_hash(entry.seq, entry.ts, entry.kind, entry.data, entry.prev) != entry.hash:
            raise AuditError(
                "entry was modified",
                file=where,
                field="hash",
                got=entry.hash[:12],
                expected="the SHA-256 of the entry",
            )
        entries.append(entry)
        prev = entry.hash
    return entries


def _no_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value

"""Append-only, hash-chained audit log (`audit.jsonl`).

Each line is one entry in canonical JSON (sorted keys, no spaces, UTF-8, no NaN/Infinity):
`{"hash", "payload", "prev", "seq", "ts", "type"}`. `hash` is the SHA-256 of the same object
without `hash`, and `prev` is the previous entry's hash, so any changed byte, deletion,
insertion or reordering breaks the chain at the first line touched. Because `hash` sorts
first, a line's hash covers exactly the bytes that follow it: verification needs no
re-serialisation. Entries hold only pseudonyms, counts and commitments, never texts or
identities.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from guarded_rl.audit.events import validate_payload
from guarded_rl.errors import AuditError

#: the log's file name inside a run directory (the one place it is spelled)
GENESIS = "0" * 64
_PREFIX = b'{"hash":"'
_HASH_END = len(_PREFIX) + 64  # index of the closing quote of the hash value


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    ts: float
    type: str
    payload: dict[str, Any]
    prev: str
    hash: str


def iso_time(ts: float) -> str:
    """An entry time as ISO 8601 UTC to the second (`2026-11-26T20:49:18Z`)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def canonical_json(value: Any) -> str:
    """Stable JSON: sorted keys, no spaces, UTF-8 text, NaN/Infinity become null."""
    return json.dumps(
        _no_nan(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def entry_body(seq: int, ts: float, type_: str, payload: dict[str, Any], prev: str) -> bytes:
    body = {"payload": payload, "prev": prev, "seq": seq, "ts": ts, "type": type_}
    return canonical_json(body).encode("utf-8")


def entry_hash(seq: int, ts: float, type_: str, payload: dict[str, Any], prev: str) -> str:
    return hashlib.sha256(entry_body(seq, ts, type_, payload, prev)).hexdigest()


class AuditLog:
    """Writer for one run's audit log; reopening an existing log continues its chain.

    `entries_hashes` lists every entry's hash in order: the signer builds Merkle heads on it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries_hashes: list[str] = []
        if self.path.exists():
            report = scan_log(self.path)
            if report.problem is not None:
                raise AuditError(
                    f"audit log does not verify, refusing to append: {report.problem.reason}",
                    file=str(self.path),
                    field="seq",
                    got=report.problem.seq,
                )
            self.entries_hashes = report.hashes
        self._seq = len(self.entries_hashes)
        self._prev = self.entries_hashes[-1] if self.entries_hashes else GENESIS
        self._fh = self.path.open("ab")

    @property
    def head(self) -> str:
        """Hash of the last entry written (the genesis hash for an empty log)."""
        return self._prev

    @property
    def size(self) -> int:
        return self._seq

    def append(self, type_: str, payload: dict[str, Any] | BaseModel) -> AuditEntry:
        """Write one entry and flush it to the OS (`sync` makes it durable).

        The payload must fit its type's model (`audit/events.py`, also accepted as an
        instance): an unknown type or a payload that does not fit raises and writes nothing."""
        if isinstance(payload, BaseModel):
            payload = payload.model_dump(mode="json")
        # checked as it will be read back: after NaN -> null and tuples -> lists
        written: dict[str, Any] = json.loads(canonical_json(payload))
        validate_payload(type_, written, seq=self._seq, file=str(self.path))
        payload = written
        ts = round(time.time(), 6)
        body = entry_body(self._seq, ts, type_, payload, self._prev)
        digest = hashlib.sha256(body).hexdigest()
        line = _PREFIX + digest.encode() + b'",' + body[1:] + b"\n"
        self._fh.write(line)
        self._fh.flush()
        entry = AuditEntry(self._seq, ts, type_, payload, self._prev, digest)
        self.entries_hashes.append(digest)
        self._seq += 1
        self._prev = digest
        return entry

    def sync(self) -> None:
        """Make every written entry durable (before a signed head refers to them)."""
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self.sync()
            self._fh.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing wrong with a log: which entry (seq = 0-based line) and why."""

    seq: int
    reason: str
    torn: bool = False  # an incomplete last line (a write cut short), not a changed entry


@dataclass(frozen=True, slots=True)
class ScanReport:
    hashes: list[str]  # hashes of the entries that verified, in order
    problem: Problem | None


def scan_log(path: str | Path) -> ScanReport:
    """Check the chain line by line; stop at the first problem.

    Fast: the hash is checked on the raw bytes, and only the small tail of each line
    (`prev`, `seq`, `ts`, `type`) is parsed.
    """
    data = Path(path).read_bytes()
    lines = data.split(b"\n")
    last_complete = data.endswith(b"\n") or not data
    if lines and lines[-1] == b"":
        lines.pop()
    hashes: list[str] = []
    prev = GENESIS
    sha256 = hashlib.sha256
    for seq, raw in enumerate(lines):
        torn = seq == len(lines) - 1 and not last_complete
        if torn:
            return ScanReport(hashes, Problem(seq, "torn last line (an incomplete write)", True))
        reason = _check_line(raw, seq, prev, sha256)
        if reason is not None:
            return ScanReport(hashes, Problem(seq, reason))
        prev = raw[len(_PREFIX) : _HASH_END].decode()
        hashes.append(prev)
    return ScanReport(hashes, None)


def _check_line(raw: bytes, seq: int, prev: str, sha256: Any) -> str | None:
    """Check one line's hash, sequence number and link without parsing its payload.

    The hash covers the bytes after the hash field; in canonical form the top-level
    `prev`, `seq`, `ts`, `type` follow the payload, so the last `,"prev":"` is the real one
    (a nested string cannot contain it unescaped).
    """
    if not raw.startswith(_PREFIX) or raw[_HASH_END : _HASH_END + 2] != b'",':
        return "not an audit entry"
    claimed = raw[len(_PREFIX) : _HASH_END]
    body = b"{" + raw[_HASH_END + 2 :]
    if sha256(body).hexdigest().encode() != claimed:
        return "entry was modified (hash does not match its content)"
    at = body.rfind(b',"prev":"')
    if at < 0 or not body.startswith(b'{"payload":{'):
        return "not an audit entry (wrong fields)"
    tail = body[at + 9 :]
    rest = tail[64:]
    if not rest.startswith(b'","seq":'):
        return "not an audit entry (wrong fields)"
    number_end = rest.find(b",", 8)
    try:
        found = int(rest[8:number_end])
    except ValueError:
        return "not an audit entry (bad seq)"
    if found != seq:
        return (
            f"sequence number {found} where {seq} was expected "
            "(inserted, deleted or reordered entry)"
        )
    if tail[:64] != prev.encode():
        return "chain broken: prev is not the hash of the previous entry"
    if not rest[number_end:].startswith(b',"ts":') or b',"type":"' not in rest[number_end:]:
        return "not an audit entry (wrong fields)"
    if not rest.endswith(b'"}'):
        return "not an audit entry (wrong fields)"
    return None


def iter_entries(path: str | Path, *, skip_unreadable: bool = False) -> Iterator[AuditEntry]:
    """Parse entries in order (no verification: use `read_log` for that).

    `skip_unreadable`: pass over lines that are not entries instead of raising (for reading a
    log that failed verification as it stands)."""
    with Path(path).open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                return
            try:
                obj = json.loads(raw)
                if set(obj) != {"hash", "payload", "prev", "seq", "ts", "type"}:
                    raise KeyError("fields")
                if not isinstance(obj["payload"], dict):
                    raise TypeError("payload")
                yield AuditEntry(
                    obj["seq"], obj["ts"], obj["type"], obj["payload"], obj["prev"], obj["hash"]
                )
            except (ValueError, KeyError, TypeError):
                if skip_unreadable:
                    continue
                raise AuditError(
                    "not an audit entry (wrong fields)", file=f"{path}:{number}"
                ) from None


def read_log(path: str | Path, *, while_written: bool = False) -> list[AuditEntry]:
    """Every entry, after checking the whole chain; the first problem raises `AuditError`.

    `while_written`: the log of a live run, whose last line may be half written right now;
    the complete entries before it are returned (any other problem still raises).
    """
    path = Path(path)
    if not path.is_file():
        raise AuditError("no audit log", file=str(path))
    report = scan_log(path)
    if while_written and report.problem is not None and report.problem.torn:
        return list(iter_entries(path))[: len(report.hashes)]
    if report.problem is not None:
        raise AuditError(
            report.problem.reason,
            file=f"{path}:{report.problem.seq + 1}",
            field="seq",
            got=report.problem.seq,
        )
    return list(iter_entries(path))


def _no_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value

"""The hash-chained audit log: what goes in comes out, and any edit is caught at its line."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from guarded_rl.audit.log import (
    GENESIS,
    AuditEntry,
    AuditLog,
    Problem,
    ScanReport,
    canonical_json,
    entry_body,
    entry_hash,
    read_log,
    scan_log,
)
from guarded_rl.errors import AuditError

#: A line starts with `{"hash":"` + 64 hex digits + `",`: the hash covers `{` + the rest.
HASH_COVERS_FROM = len('{"hash":"') + 64 + len('",')
SUBJECT = "p-" + "ab" * 16
PURGE = {"retention_days": 30, "feedback_rows": 1}
EPISODES = {"step": 1, "episodes": 2, "mean_return": 0.5, "min_return": 0.0, "mean_length": 3.0,
            "interventions": 0, "terminated": 2}  # fmt: skip


def _write(path: Path, n: int = 4) -> list[AuditEntry]:
    entries = []
    with AuditLog(path) as log:
        for i in range(n):
            entries.append(
                log.append("retention_purge", {"retention_days": 30, "feedback_rows": i * 2})
            )
    return entries


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _set_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _audit_error(path: Path) -> AuditError:
    with pytest.raises(AuditError) as info:
        read_log(path)
    return info.value


def _line_of(obj: dict[str, Any]) -> str:
    """A well-formed line for `obj` (its `hash` field is taken as given)."""
    return canonical_json(obj)


def _rehashed(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` with a hash that matches its (possibly edited) content, as a forger would make."""
    fields = {k: v for k, v in obj.items() if k != "hash"}
    return {
        **fields,
        "hash": entry_hash(obj["seq"], obj["ts"], obj["type"], obj["payload"], obj["prev"]),
    }


def _problem(path: Path) -> Problem:
    report = scan_log(path)
    assert isinstance(report, ScanReport)
    assert report.problem is not None
    return report.problem


def _assert_caught_at(path: Path, seq: int, reason: str | None = None) -> AuditError:
    """scan_log stops at 0-based `seq` (not torn), read_log names 1-based line `seq + 1`."""
    report = scan_log(path)
    assert report.problem is not None
    assert report.problem.seq == seq
    assert report.problem.torn is False
    if reason is not None:
        assert reason in report.problem.reason
    # the entries before the problem still verified, and only those
    good = [json.loads(line)["hash"] for line in _lines(path)[:seq]]
    assert report.hashes == good
    err = _audit_error(path)
    assert err.file == f"{path}:{seq + 1}"
    assert f"{path}:{seq + 1}" in err.one_line()
    if reason is not None:
        assert reason in err.one_line()
    return err


# -- round trip and format ------------------------------------------------------------------


def test_entries_contain_what_was_appended_and_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        assert log.head == GENESIS
        assert log.size == 0
        assert log.entries_hashes == []
        first = log.append("consent_revoked", {"subject": SUBJECT, "purposes": ("x", "y")})
        second = log.append("retention_purge", {"retention_days": 7, "feedback_rows": 1})
        assert log.head == second.hash
        assert log.size == 2
        assert log.entries_hashes == [first.hash, second.hash]
    entries = read_log(path)
    assert [e.seq for e in entries] == [0, 1]
    assert [e.type for e in entries] == ["consent_revoked", "retention_purge"]
    assert entries[0].payload == {"subject": SUBJECT, "purposes": ["x", "y"]}
    assert entries[1].payload == {"retention_days": 7, "feedback_rows": 1}
    assert entries[0].prev == GENESIS
    assert entries[1].prev == entries[0].hash == first.hash
    assert entries[1].hash == second.hash
    # what append returned is exactly what reading gives back (tuples already lists)
    assert entries == [first, second]
    for e in entries:
        assert e.hash == entry_hash(e.seq, e.ts, e.type, e.payload, e.prev)
        assert (
            e.hash == hashlib.sha256(entry_body(e.seq, e.ts, e.type, e.payload, e.prev)).hexdigest()
        )
    assert scan_log(path) == ScanReport([first.hash, second.hash], None)


def test_entries_are_frozen(tmp_path: Path) -> None:
    (entry,) = _write(tmp_path / "audit.jsonl", 1)
    assert [f.name for f in dataclasses.fields(AuditEntry)] == [
        "seq",
        "ts",
        "type",
        "payload",
        "prev",
        "hash",
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.hash = GENESIS  # type: ignore[misc]


def test_one_canonical_json_object_per_line_hash_first(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    written = _write(path, 3)
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.split(b"\n")[:-1]
    assert len(lines) == 3
    for line, entry in zip(lines, written, strict=True):
        obj = json.loads(line)
        # keys sorted, so `hash` comes first
        assert list(obj) == ["hash", "payload", "prev", "seq", "ts", "type"]
        assert line.startswith(b'{"hash":"' + entry.hash.encode() + b'","payload":')
        assert b" " not in line  # no spaces anywhere (the payload holds no strings with spaces)
        assert canonical_json(obj).encode() == line
        # the hash covers exactly the bytes after the hash field, no re-serialisation needed
        body = b"{" + line[HASH_COVERS_FROM:]
        assert body == entry_body(entry.seq, entry.ts, entry.type, entry.payload, entry.prev)
        assert hashlib.sha256(body).hexdigest() == obj["hash"] == entry.hash


def test_nan_and_infinity_become_null(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        entry = log.append("episodes", {**EPISODES, "mean_return": float("nan"),
                                        "min_return": float("-inf")})  # fmt: skip
    text = path.read_text()
    assert "NaN" not in text
    assert "Infinity" not in text
    expected = {**EPISODES, "mean_return": None, "min_return": None}
    assert entry.payload == expected
    (read,) = read_log(path)
    assert read.payload == expected
    assert read.hash == entry.hash == entry_hash(read.seq, read.ts, "episodes", expected, GENESIS)
    assert canonical_json(float("nan")) == "null"


def test_canonical_json_is_key_order_independent() -> None:
    assert canonical_json({"b": 1, "a": [2, {"d": 3, "c": 4}]}) == '{"a":[2,{"c":4,"d":3}],"b":1}'
    assert canonical_json({"x": "é"}) == '{"x":"é"}'


def test_entry_hash_covers_every_field() -> None:
    base = (3, 1.5, "cycle", {"a": 1}, GENESIS)
    digest = entry_hash(*base)
    assert len(digest) == 64
    variants = [
        (4, 1.5, "cycle", {"a": 1}, GENESIS),
        (3, 1.6, "cycle", {"a": 1}, GENESIS),
        (3, 1.5, "other", {"a": 1}, GENESIS),
        (3, 1.5, "cycle", {"a": 2}, GENESIS),
        (3, 1.5, "cycle", {"a": 1}, "1" * 64),
    ]
    for variant in variants:
        assert entry_hash(*variant) != digest, variant


# -- reopening ------------------------------------------------------------------------------


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    written = _write(path, 2)
    with AuditLog(path) as log:
        assert log.head == written[-1].hash
        assert log.size == 2
        assert log.entries_hashes == [e.hash for e in written]
        entry = log.append("retention_purge", PURGE)
        assert log.size == 3
        assert log.entries_hashes == [*(e.hash for e in written), entry.hash]
    assert entry.seq == 2
    assert entry.prev == written[-1].hash
    entries = read_log(path)
    assert [e.type for e in entries] == ["retention_purge"] * 3
    assert scan_log(path).problem is None


def test_empty_existing_file_starts_at_genesis(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("")
    assert scan_log(path) == ScanReport([], None)
    with AuditLog(path) as log:
        assert log.append("retention_purge", PURGE).prev == GENESIS
    assert len(read_log(path)) == 1


def test_sync_keeps_every_entry_readable(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    try:
        entry = log.append("retention_purge", PURGE)
        log.sync()
        assert read_log(path) == [entry]  # readable while the writer is still open
    finally:
        log.close()
    log.close()  # closing twice is harmless


def test_reopening_a_tampered_log_refuses_to_append(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    lines = _lines(path)
    _set_lines(path, [lines[0], lines[2]])
    before = path.read_bytes()
    with pytest.raises(AuditError) as info:
        AuditLog(path)
    assert info.value.got == 1  # the first bad entry
    assert "refusing to append" in info.value.one_line()
    assert path.read_bytes() == before


def test_reopening_a_log_with_a_changed_byte_refuses_to_append(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    raw = path.read_bytes()
    tampered = raw.replace(b'"feedback_rows":2', b'"feedback_rows":3')
    assert tampered != raw
    path.write_bytes(tampered)
    with pytest.raises(AuditError):
        AuditLog(path)
    assert path.read_bytes() == tampered


def test_reopening_a_torn_log_refuses_to_append(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 2)
    torn = path.read_bytes()[:-10]
    path.write_bytes(torn)
    with pytest.raises(AuditError):
        AuditLog(path)
    assert path.read_bytes() == torn


# -- tampering ------------------------------------------------------------------------------


def test_changed_byte_in_payload_is_caught_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 4)
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    assert lines[2].count(b'"feedback_rows":4') == 1
    lines[2] = lines[2].replace(b'"feedback_rows":4', b'"feedback_rows":5')  # one byte
    path.write_bytes(b"\n".join(lines))
    assert len(path.read_bytes()) == len(raw)
    _assert_caught_at(path, 2, "modified")


@pytest.mark.parametrize("line", [0, 1, 2, 3])
def test_any_single_byte_change_in_any_line_is_caught(tmp_path: Path, line: int) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 4)
    raw = path.read_bytes()
    start = sum(len(x) + 1 for x in raw.split(b"\n")[:line])
    length = len(raw.split(b"\n")[line])
    for offset in range(length):
        data = bytearray(raw)
        data[start + offset] ^= 0x01
        path.write_bytes(bytes(data))
        problem = _problem(path)
        assert problem.seq == line, (offset, problem)
        assert problem.torn is False


def test_modified_type_or_timestamp_is_caught(tmp_path: Path) -> None:
    for field, value in (("type", "other"), ("ts", 1.0), ("seq", 7), ("prev", "1" * 64)):
        path = tmp_path / f"{field}.jsonl"
        _write(path, 2)
        lines = _lines(path)
        obj = json.loads(lines[0])
        obj[field] = value
        lines[0] = _line_of(obj)
        _set_lines(path, lines)
        _assert_caught_at(path, 0, "modified")


def test_modified_hash_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    lines = _lines(path)
    obj = json.loads(lines[1])
    obj["hash"] = "f" * 64
    lines[1] = _line_of(obj)
    _set_lines(path, lines)
    _assert_caught_at(path, 1, "modified")


def test_rehashed_edit_breaks_the_next_link(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    lines = _lines(path)
    obj = json.loads(lines[1])
    obj["payload"]["retention_days"] = 31
    lines[1] = _line_of(_rehashed(obj))
    _set_lines(path, lines)
    _assert_caught_at(path, 2, "chain broken")


def test_renumbered_and_rehashed_deletion_breaks_the_link(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 4)
    lines = _lines(path)
    del lines[1]
    # a forger renumbers and rehashes every later entry, but cannot fix `prev` without
    # rewriting the whole tail: the first renumbered entry no longer links to its predecessor
    rest = []
    for new_seq, line in enumerate(lines[1:], start=1):
        obj = json.loads(line)
        obj["seq"] = new_seq
        rest.append(_line_of(_rehashed(obj)))
    _set_lines(path, [lines[0], *rest])
    _assert_caught_at(path, 1, "chain broken")


@pytest.mark.parametrize(("deleted", "bad_seq"), [(0, 0), (1, 1), (2, 2)])
def test_deleted_line_is_caught(tmp_path: Path, deleted: int, bad_seq: int) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 4)
    lines = _lines(path)
    del lines[deleted]
    _set_lines(path, lines)
    _assert_caught_at(path, bad_seq)


def test_deleted_last_line_is_not_caught_by_the_chain_alone(tmp_path: Path) -> None:
    """Truncation at a line boundary leaves a valid shorter chain: signed heads catch it."""
    path = tmp_path / "audit.jsonl"
    written = _write(path, 3)
    _set_lines(path, _lines(path)[:2])
    assert scan_log(path) == ScanReport([e.hash for e in written[:2]], None)


def test_duplicated_line_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 4)
    lines = _lines(path)
    lines.insert(2, lines[1])
    _set_lines(path, lines)
    _assert_caught_at(path, 2, "sequence number")


def test_inserted_well_formed_entry_is_caught_at_the_next_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    written = _write(path, 4)
    lines = _lines(path)
    # a perfect forgery at position 2: right seq, right prev, right hash ...
    forged = {"seq": 2, "ts": 1.0, "type": "cycle", "payload": {"x": 1}, "prev": written[1].hash}
    lines.insert(2, _line_of(_rehashed(forged)))
    _set_lines(path, lines)
    # ... verifies itself, but the entry it displaced no longer fits
    _assert_caught_at(path, 3, "sequence number")


def test_reordered_lines_are_caught(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 4)
    lines = _lines(path)
    lines[1], lines[2] = lines[2], lines[1]
    _set_lines(path, lines)
    _assert_caught_at(path, 1, "sequence number")


def test_renumbered_reorder_is_still_caught(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    a, b = (json.loads(line) for line in _lines(path)[1:3])
    a["seq"], b["seq"] = 2, 1
    _set_lines(path, [_lines(path)[0], _line_of(_rehashed(b)), _line_of(_rehashed(a))])
    _assert_caught_at(path, 1, "chain broken")


def test_garbage_line_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 2)
    _set_lines(path, [*_lines(path), '{"seq": 2, "truncated'])
    _assert_caught_at(path, 2, "not an audit entry")


def test_garbage_line_in_the_middle_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    lines = _lines(path)
    for garbage in ("", "not json", '{"hash":"short","payload":{}}'):
        _set_lines(path, [lines[0], garbage, *lines[1:]])
        _assert_caught_at(path, 1, "not an audit entry")


@pytest.mark.parametrize("cut", [1, 10, 100])
def test_torn_last_line_is_reported_as_torn(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "audit.jsonl"
    written = _write(path, 3)
    path.write_bytes(path.read_bytes()[:-cut])  # the last write was cut short
    report = scan_log(path)
    assert report.hashes == [e.hash for e in written[:2]]
    assert report.problem is not None
    assert report.problem.seq == 2
    assert report.problem.torn is True
    assert "torn" in report.problem.reason
    err = _audit_error(path)
    assert err.file == f"{path}:3"
    assert "torn" in err.one_line()


def test_tampered_last_line_with_newline_is_not_torn(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    lines = _lines(path)
    lines[2] = lines[2][:-10]  # cut short but terminated: not an incomplete write
    _set_lines(path, lines)
    problem = _problem(path)
    assert (problem.seq, problem.torn) == (2, False)


def test_missing_log(tmp_path: Path) -> None:
    err = _audit_error(tmp_path / "none.jsonl")
    assert "no audit log" in err.one_line()

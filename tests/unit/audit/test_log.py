"""The hash-chained audit log: what goes in comes out, and any edit is caught at its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guarded_rl.audit.log import GENESIS, AuditLog, canonical_json, entry_hash, read_log
from guarded_rl.errors import AuditError


def _write(path: Path, n: int = 4) -> list[dict]:
    entries = []
    with AuditLog(path) as log:
        for i in range(n):
            entry = log.append("cycle", {"cycle": i, "counts": {"shown": i * 2}, "ok": True})
            entries.append(entry.model_dump())
    return entries


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _set_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _audit_error(path: Path) -> AuditError:
    with pytest.raises(AuditError) as info:
        read_log(path)
    return info.value


def test_entries_contain_what_was_appended_and_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        assert log.head == GENESIS
        first = log.append("start", {"seed": 3, "sha": "ab" * 32, "ids": ("x", "y")})
        second = log.append("cycle", {"counts": {"blocked": 1}, "rate": 0.25})
        assert log.head == second.hash
    entries = read_log(path)
    assert [e.seq for e in entries] == [0, 1]
    assert [e.kind for e in entries] == ["start", "cycle"]
    assert entries[0].data == {"seed": 3, "sha": "ab" * 32, "ids": ["x", "y"]}
    assert entries[1].data == {"counts": {"blocked": 1}, "rate": 0.25}
    assert entries[0].prev == GENESIS
    assert entries[1].prev == entries[0].hash == first.hash
    assert entries[1].hash == second.hash
    for e in entries:
        assert e.hash == entry_hash(e.seq, e.ts, e.kind, e.data, e.prev)


def test_one_canonical_json_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    lines = _lines(path)
    assert len(lines) == 3
    for line in lines:
        obj = json.loads(line)
        assert set(obj) == {"seq", "ts", "kind", "data", "prev", "hash"}
        assert canonical_json(obj) == line


def test_nan_and_infinity_become_null(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append("x", {"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": float("-inf")}})
    text = path.read_text()
    assert "NaN" not in text
    assert "Infinity" not in text
    assert read_log(path)[0].data == {"a": None, "b": [1.0, None], "c": {"d": None}}


def test_canonical_json_is_key_order_independent() -> None:
    assert canonical_json({"b": 1, "a": [2, {"d": 3, "c": 4}]}) == '{"a":[2,{"c":4,"d":3}],"b":1}'
    assert canonical_json({"x": "é"}) == '{"x":"é"}'


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    written = _write(path, 2)
    with AuditLog(path) as log:
        assert log.head == written[-1]["hash"]
        entry = log.append("resume", {"n": 1})
    assert entry.seq == 2
    assert entry.prev == written[-1]["hash"]
    entries = read_log(path)
    assert [e.kind for e in entries] == ["cycle", "cycle", "resume"]


def test_empty_existing_file_starts_at_genesis(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("")
    with AuditLog(path) as log:
        assert log.append("a", {}).prev == GENESIS
    assert len(read_log(path)) == 1


def test_modified_field_is_caught_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 4)
    lines = _lines(path)
    obj = json.loads(lines[2])
    obj["data"]["counts"]["shown"] = 999
    lines[2] = canonical_json(obj)
    _set_lines(path, lines)
    err = _audit_error(path)
    assert err.file == f"{path}:3"
    assert f"{path}:3" in err.one_line()
    assert "modified" in err.one_line()


def test_modified_kind_or_timestamp_is_caught(tmp_path: Path) -> None:
    for field, value in (("kind", "other"), ("ts", 1.0)):
        path = tmp_path / f"{field}.jsonl"
        _write(path, 2)
        lines = _lines(path)
        obj = json.loads(lines[0])
        obj[field] = value
        lines[0] = canonical_json(obj)
        _set_lines(path, lines)
        assert _audit_error(path).file == f"{path}:1"


def test_rehashed_edit_breaks_the_next_link(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    lines = _lines(path)
    obj = json.loads(lines[1])
    obj["data"]["ok"] = False
    obj["hash"] = entry_hash(obj["seq"], obj["ts"], obj["kind"], obj["data"], obj["prev"])
    lines[1] = canonical_json(obj)
    _set_lines(path, lines)
    err = _audit_error(path)
    assert err.file == f"{path}:3"
    assert "chain broken" in err.one_line()


@pytest.mark.parametrize(("deleted", "bad_line"), [(0, 1), (1, 2), (2, 3)])
def test_deleted_line_is_caught(tmp_path: Path, deleted: int, bad_line: int) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 4)
    lines = _lines(path)
    del lines[deleted]
    _set_lines(path, lines)
    err = _audit_error(path)
    assert err.file == f"{path}:{bad_line}"
    assert f"{path}:{bad_line}" in err.one_line()


def test_reordered_lines_are_caught(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 4)
    lines = _lines(path)
    lines[1], lines[2] = lines[2], lines[1]
    _set_lines(path, lines)
    assert _audit_error(path).file == f"{path}:2"


def test_renumbered_reorder_is_still_caught(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    a, b = (json.loads(line) for line in _lines(path)[1:3])
    a["seq"], b["seq"] = 2, 1
    _set_lines(path, [_lines(path)[0], canonical_json(b), canonical_json(a)])
    assert _audit_error(path).file == f"{path}:2"


def test_garbage_line_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 2)
    _set_lines(path, [*_lines(path), '{"seq": 2, "truncated'])
    err = _audit_error(path)
    assert err.file == f"{path}:3"
    assert "not an audit entry" in err.one_line()


def test_missing_log(tmp_path: Path) -> None:
    err = _audit_error(tmp_path / "none.jsonl")
    assert "no audit log" in err.one_line()


def test_reopening_a_tampered_log_refuses_to_append(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    lines = _lines(path)
    _set_lines(path, [lines[0], lines[2]])
    before = path.read_text()
    with pytest.raises(AuditError):
        AuditLog(path)
    assert path.read_text() == before

"""Inbox entries are read only as small regular files, never blocking (issue 15, item 19)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from guarded_rl.approval.inbox_file import read_small_file
from guarded_rl.approval.reviewers import ReviewError
from guarded_rl.errors import InputError


def test_regular_file_read(tmp_path: Path) -> None:
    (tmp_path / "d.json").write_bytes(b"{}")
    assert read_small_file(tmp_path / "d.json") == b"{}"


@pytest.mark.parametrize("kind", ["dangling", "link", "dir", "fifo", "huge"])
def test_anything_else_refused_with_reason(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "x.json"
    (tmp_path / "real.json").write_bytes(b"{}")
    if kind == "dangling":
        path.symlink_to(tmp_path / "nowhere")
    elif kind == "link":
        path.symlink_to(tmp_path / "real.json")
    elif kind == "dir":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(b"x" * (65 * 1024))
    with pytest.raises(ReviewError) as err:
        read_small_file(path)
    assert err.value.file == str(path)


def test_quoted_values_are_cut() -> None:
    line = InputError("invalid value", field="body", got="A" * 10_000_000).one_line()
    assert len(line) < 300 and "AAA..." in line

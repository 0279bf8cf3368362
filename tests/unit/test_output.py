"""User-named output files: never over existing data or a run's own files (issue 15, item 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from guarded_rl.errors import InputError
from guarded_rl.output import write_output


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "audit.jsonl").write_bytes(b"log\n")
    return run


def test_existing_file_kept_unless_force(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"precious")
    with pytest.raises(InputError, match="file exists") as err:
        write_output(target, b"new", field="--out")
    assert err.value.field == "--out" and err.value.file == str(target)
    assert target.read_bytes() == b"precious"
    write_output(target, b"new", field="--out", force=True, mode=0o600)
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp file left


def test_run_directory_files_refused_even_with_force(run_dir: Path, tmp_path: Path) -> None:
    link = tmp_path / "innocent.json"
    link.symlink_to(run_dir / "audit.jsonl")
    for target in (run_dir / "audit.jsonl", run_dir / "new.json", run_dir / "checkpoints" / "x",
                   link):  # fmt: skip
        with pytest.raises(InputError, match="run directory"):
            write_output(target, b"x", field="-o", force=True)
    assert (run_dir / "audit.jsonl").read_bytes() == b"log\n"
    assert not (run_dir / "new.json").exists()


def test_missing_folder_is_not_created(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "x.json"
    with pytest.raises(InputError, match="no such folder"):
        write_output(target, b"x", field="-o")
    assert not (tmp_path / "no").exists()


def test_new_file_written_whole(tmp_path: Path) -> None:
    target = tmp_path / "new.json"
    write_output(target, b"{}", field="-o")
    assert target.read_bytes() == b"{}"
    with pytest.raises(InputError, match="is a directory"):
        write_output(tmp_path, b"x", field="-o", force=True)

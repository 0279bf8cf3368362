"""One writer per run directory, across processes and within one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from guarded_rl.errors import InputError
from guarded_rl.rundir.lock import run_lock

HOLDER = textwrap.dedent(
    """
    import sys, time
    from guarded_rl.rundir.lock import run_lock
    with run_lock(sys.argv[1]):
        print("held", flush=True)
        sys.stdin.readline()  # hold until the test says so
    """
)


def test_a_second_process_is_refused_until_the_first_lets_go(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = pytest.raises(InputError, match="in use by another guarded-rl process")
        with refused, run_lock(tmp_path):
            pass
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=30)
    with run_lock(tmp_path):  # released when the holder finished
        pass


def test_a_second_take_in_the_same_process_is_refused_too(tmp_path: Path) -> None:
    """One session per writer: a nested take is a bug that would let two writers interleave,
    so it is refused like another process's (flock belongs to the open file)."""
    with run_lock(tmp_path), pytest.raises(InputError, match="in use"), run_lock(tmp_path):
        pass
    with run_lock(tmp_path):  # released by the outer block
        pass


def test_a_planted_link_is_never_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("not ours")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".lock").symlink_to(target)
    with pytest.raises(InputError, match="symbolic link"), run_lock(run_dir):
        pass
    assert target.read_text() == "not ours"


def test_a_missing_run_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such run directory"), run_lock(tmp_path / "nope"):
        pass

"""One writer per run directory, across processes; re-entrant within one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from guarded_rl.audit.run_lock import run_lock
from guarded_rl.errors import InputError

HOLDER = textwrap.dedent(
    """
    import sys, time
    from guarded_rl.audit.run_lock import run_lock
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


def test_the_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    with run_lock(tmp_path):
        with run_lock(tmp_path):
            pass
        with run_lock(tmp_path):  # still held by the outer block
            pass
    with run_lock(tmp_path):
        pass


def test_a_missing_run_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such run directory"), run_lock(tmp_path / "nope"):
        pass

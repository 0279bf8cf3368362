"""One writer per run directory: a live run, or a command that appends to its log.

The audit log is a hash chain with a signed head; two processes appending at once would fork
it. `run_lock` takes an exclusive advisory lock (`flock`) on `RUN_DIR/.lock` for the whole of
an operation and refuses at once, with a one-line error, when another process holds it. The
lock is re-entrant within a process (a command that opens the store and later appends takes
it once) and is released by the kernel if the process dies.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from guarded_rl.errors import InputError

LOCK_FILE = ".lock"


class RunInUse(InputError):
    """Another process (a live run, or a command) holds the run directory's writer lock."""


_held: dict[Path, tuple[int, int]] = {}  # resolved lock path -> (fd, depth)


@contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold the run directory's writer lock for the duration of the block."""
    if not Path(run_dir).is_dir():
        raise InputError("no such run directory", field="RUN_DIR", got=str(run_dir))
    path = (Path(run_dir) / LOCK_FILE).resolve()
    if path in _held:
        fd, depth = _held[path]
        _held[path] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _held[path]
            _held[path] = (fd, depth - 1)
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunInUse(
            "the run directory is in use by another guarded-rl process",
            field="RUN_DIR",
            got=str(run_dir),
            expected="a run that is not running (wait for it, then try again)",
        ) from None
    _held[path] = (fd, 1)
    try:
        yield
    finally:
        del _held[path]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

"""One writer per run directory: a live run, or a command that appends to its log.

The audit log is a hash chain with a signed head; two processes appending at once would fork
it. `run_lock` takes an exclusive advisory lock (`flock`) on `RUN_DIR/.lock` for the whole of
an operation and refuses at once, with a one-line error, when another holder has it. The kernel
releases it if the process dies.

Only `guarded_rl.rundir.session` takes it: every writer of a run opens one session and does all
its work inside it, so the lock is never taken twice. A second take, even by the same process,
is refused like any other (flock locks belong to the open file, not the process).
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from guarded_rl.errors import InputError
from guarded_rl.rundir.paths import RunPaths


class RunInUse(InputError):
    """Another holder (a live run, or a command) has the run directory's writer lock."""


@contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold the run directory's writer lock for the duration of the block."""
    paths = RunPaths(run_dir)
    if not paths.root.is_dir():
        raise InputError("no such run directory", field="RUN_DIR", got=str(run_dir))
    try:  # never through a link a hostile run directory planted
        fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise  # a read-only or unwritable run: the CLI says so in one line (exit 1)
        raise InputError(
            "the run's lock file is a symbolic link",
            file=str(paths.lock),
            expected="a regular file guarded-rl created",
        ) from None
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
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

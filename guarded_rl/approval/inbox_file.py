"""Reading a decision file someone dropped: a small regular file, or a one-line refusal.

The review inbox is a folder anyone who can write to the run may put things into. A symbolic
link (dangling, or pointing at another file), a directory named `*.json`, a FIFO (whose open
or read would block the loop forever) or a huge file must neither crash nor hang the loop,
nor be echoed back in full: they are refused with a short reason and moved aside.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from guarded_rl.approval.reviewers import ReviewError

#: The largest decision file read; a signed decision is well under 2 KiB.
MAX_DECISION_BYTES = 64 * 1024


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_small_file(path: Path, *, limit: int = MAX_DECISION_BYTES) -> bytes:
    """The bytes of `path` if it is a regular file (not followed through a link) of at most
    `limit` bytes; a `ReviewError` naming the file and what it is otherwise. Never blocks."""
    shown = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise ReviewError("a symbolic link, not a decision file", file=shown) from None
        raise ReviewError(f"cannot read: {exc.strerror}", file=shown) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ReviewError(f"{_kind(info.st_mode)}, not a decision file", file=shown)
        if info.st_size > limit:
            raise ReviewError(
                f"too large ({info.st_size} bytes)",
                file=shown,
                expected=f"a decision file of at most {limit} bytes",
            )
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # grew after the fstat
            raise ReviewError("too large", file=shown, expected=f"at most {limit} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise ReviewError(f"cannot read: {exc.strerror}", file=shown) from None
    finally:
        os.close(fd)

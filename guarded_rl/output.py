"""Files a user names on the command line (`-o`, `--out`, `--key-file`): written safely.

A path on the command line may be a mistake or an attack. So an existing file is kept unless
the user says `--force`; a path that resolves (links followed) into a run directory's own
files (a folder holding `audit.jsonl`, or one below it) is refused even then, because the log,
its head, keys and stores must only change through their own writers; a missing folder is an
error, never created silently; and the file appears whole or not at all (temp file + rename,
or + hard link when it must not replace anything).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from guarded_rl.atomic import fsync_dir
from guarded_rl.errors import InputError
from guarded_rl.rundir.paths import LOG_FILE

#: The file that marks a folder as a run directory.
RUN_MARKER = LOG_FILE


def run_dir_holding(path: Path) -> Path | None:
    """The run directory `path` (links resolved) lies in, if any."""
    resolved = Path(os.path.realpath(path))
    for folder in resolved.parents:
        if (folder / RUN_MARKER).exists():
            return folder
    return None


def check_output(path: Path, *, field: str, force: bool = False) -> Path:
    """Refuse an output path before any work: see the module docstring for the rules."""
    path = Path(path)
    shown = str(path)
    run_dir = run_dir_holding(path)
    if run_dir is not None:
        raise InputError(
            f"refusing to write into run directory {run_dir} (its files change only through "
            "guarded-rl's own writers)",
            file=shown,
            field=field,
            expected="a path outside any run directory",
        )
    parent = path.parent
    if not parent.is_dir():
        raise InputError(
            f"no such folder: {parent}",
            file=shown,
            field=field,
            expected="a file in an existing folder (create it first)",
        )
    if path.is_dir():
        raise InputError("is a directory", file=shown, field=field, expected="a file path")
    if (path.exists() or path.is_symlink()) and not force:
        raise InputError(
            "file exists", file=shown, field=field, expected="a new file, or --force to replace it"
        )
    return path


def write_output(
    path: Path, data: bytes, *, field: str, force: bool = False, mode: int = 0o644
) -> None:
    """Check `path` (as `check_output`), then write `data` to it atomically with `mode`."""
    path = check_output(path, field=field, force=force)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", file=str(path), field=field) from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the file appeared since the check: never clobber
    except FileExistsError:
        raise InputError(
            "file exists", file=str(path), field=field, expected="a new file, or --force"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", file=str(path), field=field) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    fsync_dir(path.parent)

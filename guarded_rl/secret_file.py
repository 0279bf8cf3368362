"""Write a secret (a signing key, the feedback store key) 0600 from creation on, and read one
only from a private regular file.

One writer and one reader, so every secret fails closed the same way: missing, unreadable,
not a regular file, or readable by group/other users is a one-line `AuditError` naming the
file; the mode checked is that of the file read (`fstat` on the open descriptor), not of one
swapped in later.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from guarded_rl.errors import AuditError

#: secrets are small; anything larger than this is not one
MAX_SECRET_BYTES = 64 * 1024


def read_secret_file(
    path: Path,
    what: str,
    *,
    missing: str | None = None,
    missing_expected: str | None = None,
    follow_links: bool = True,
) -> bytes:
    """The bytes of the secret `what` (e.g. "signing key") at `path`. `missing` replaces the
    message for a file that does not exist; `follow_links=False` refuses a symbolic link."""
    path = Path(path)
    flags = os.O_RDONLY | (0 if follow_links else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise AuditError(
            missing or f"{what} missing", file=str(path), expected=missing_expected
        ) from None
    except OSError as exc:
        raise AuditError(f"cannot read {what} ({exc.strerror})", file=str(path)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise AuditError(f"{what} is not a regular file", file=str(path))
        if mode & 0o077:
            raise AuditError(
                f"{what} is accessible by group/other; run: chmod 600 {path}",
                file=str(path),
                field="mode",
                got=oct(mode & 0o777),
                expected="0o600",
            )
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_SECRET_BYTES and (chunk := os.read(fd, 65536)):
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise AuditError(f"cannot read {what} ({exc.strerror})", file=str(path)) from None
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_BYTES:
        raise AuditError(f"{what} is too large to be one", file=str(path))
    return data


def write_secret_file(path: Path, what: str, data: bytes) -> None:
    """Create `path` holding `data`, mode 0600 from creation on (O_EXCL: never over an
    existing secret, whose heads or ciphertexts others may already rely on), synced."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise AuditError(f"refusing to overwrite an existing {what}", file=str(path)) from None
    except OSError as exc:
        raise AuditError(f"cannot create {what} ({exc.strerror})", file=str(path)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)  # the umask can only narrow it; make it exact
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise

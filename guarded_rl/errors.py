"""The errors a user can cause, in one tree.

Every error carries the context a person needs to fix the input (which file, which field, the
value we got, what we expected) and renders as one line. The CLI catches `GuardedRLError` once
and maps it to an exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Exit code for bad input (a policy, a flag, a file): the user must change something.
EXIT_BAD_INPUT = 2
#: Exit code for a guard that blocked or a check that failed during a run.
EXIT_BLOCKED = 3
#: Exit code for any other user-facing failure (model missing, disk full, ...).
EXIT_FAILURE = 1
#: Exit code when the user stopped a command with Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


def first_few(values: Sequence[object], limit: int = 10) -> str:
    """`[1, 2, 3]`, or the first `limit` values and `...`: for `expected=` texts."""
    return f"{values[:limit]}{' ...' if len(values) > limit else ''}"


#: Longest quoted value in an error line (a value may come from a hostile file).
QUOTE_LIMIT = 200


def _quoted(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= QUOTE_LIMIT else f"{text[: QUOTE_LIMIT - 3]}..."


class GuardedRLError(Exception):
    """Base of every error the user can cause; renders as one line with its context."""

    exit_code: int = EXIT_FAILURE

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        field: str | None = None,
        got: Any = None,
        expected: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.field = field
        self.got = got
        self.expected = expected
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """`file: field = got: message (expected ...)`, skipping the parts we don't know."""
        parts: list[str] = []
        if self.file:
            parts.append(f"{self.file}:")
        if self.field:
            where = f"{self.field} = {_quoted(self.got)}" if self.got is not None else self.field
            parts.append(f"{where}:")
        parts.append(self.message)
        line = " ".join(parts)
        if self.expected:
            line += f" (expected {self.expected})"
        return " ".join(line.split())


class InputError(GuardedRLError):
    """A file, flag or value given by the user is not what we can accept."""

    exit_code = EXIT_BAD_INPUT


def require_callable(value: object, *, field: str, expected: str, what: str = "") -> None:
    """Refuse a plug-in that is not callable, at construction rather than at first use."""
    if not callable(value):
        raise InputError(
            f"{what or field} is not callable",
            field=field,
            got=type(value).__name__,
            expected=expected,
        )


class PolicyError(InputError):
    """A guard policy file is missing, malformed or has an unknown or invalid setting."""


class ModelLoadError(GuardedRLError):
    """A model or tokenizer could not be loaded from the given directory or hub id."""


class GuardBlockedError(GuardedRLError):
    """A guard failed closed: it errored or had nothing to check with, so nothing passed."""

    exit_code = EXIT_BLOCKED


class AuditError(GuardedRLError):
    """The audit log or a checkpoint is missing, unreadable or does not verify."""


class IntegrityError(AuditError):
    """Verification failed: an entry, the head or a checkpoint is not what was signed."""

    exit_code = EXIT_BLOCKED


class ConsentError(GuardedRLError):
    """Feedback was offered without a valid consent for the purpose it would serve."""

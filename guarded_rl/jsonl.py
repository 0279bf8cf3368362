"""JSON Lines in and out through the `jsonlines` library, its errors as one-line messages.

Screen input and output, feedback imports and `audit show --json` use it. The audit log itself
is not read through it: its hash chain covers the exact bytes of each line, so `audit/log.py`
checks those bytes before it parses anything.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import IO, Any

import jsonlines

from guarded_rl.errors import InputError


class JsonLineError(ValueError):
    """One line is not valid JSON; `message` says why, for a `file:line` error."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def loads_line(line: str) -> Any:
    """The value on one line, or `JsonLineError` with the parser's reason and column."""
    try:
        return jsonlines.Reader([line]).read()
    except jsonlines.InvalidLineError as exc:
        cause = exc.__cause__
        if isinstance(cause, json.JSONDecodeError):
            raise JsonLineError(f"invalid JSON ({cause.msg} at column {cause.colno})") from None
        raise JsonLineError("invalid JSON") from None
    except RecursionError:
        raise JsonLineError("invalid JSON (nested too deeply)") from None


def read_objects(text: str, *, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; the first bad line is an `InputError`
    naming `name:line`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = loads_line(line)
        except JsonLineError as exc:
            raise InputError(exc.message, file=f"{name}:{number}") from None
        if not isinstance(value, dict):
            raise InputError(
                f"not a JSON object (a {type(value).__name__})",
                file=f"{name}:{number}",
                expected="one JSON object per line",
            )
        yield number, value


def writer(stream: IO[str], *, sort_keys: bool = False) -> jsonlines.Writer:
    """A JSON Lines writer on `stream` (left open): one object a line, UTF-8 kept as is."""
    dumps = functools.partial(json.dumps, ensure_ascii=False, sort_keys=sort_keys)
    return jsonlines.Writer(stream, dumps=dumps)

"""One spelling rule for naming an update on the command line: `u3` and `3` are the same.

`review` names proposals `u3` while `audit explain` and `replay` took a bare cycle number, so
the id one command printed failed in the next. Every command that names an update parses it
here, to the cycle number the log records.
"""

from __future__ import annotations

import re

from guarded_rl.errors import InputError

_UPDATE_ID = re.compile(r"[uU]?([0-9]{1,9})")


def parse_update_id(text: str, *, field: str = "UPDATE") -> int:
    """The cycle of update `u3` or `3`; a one-line InputError naming the value otherwise."""
    match = _UPDATE_ID.fullmatch(text.strip())
    if match is None:
        raise InputError(
            "not an update id", field=field, got=text[:40], expected="u3 or 3 (its cycle)"
        )
    return int(match.group(1))

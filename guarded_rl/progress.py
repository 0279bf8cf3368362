"""Progress of long phases (probing, re-executing recorded updates), reported to whoever listens.

Deep code calls `report("probing the candidate", done, total)`; a command that shows progress
installs a listener with `reporting(...)` for its duration. Without a listener a report costs a
lookup, so library users see nothing they did not ask for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: A listener gets what is being done, how many steps of it are done, and how many there are.
Listener = Callable[[str, int, int], None]

_listener: ContextVar[Listener | None] = ContextVar("guarded_rl_progress", default=None)


def report(what: str, done: int, total: int) -> None:
    """Tell the listener, if any, that `done` of `total` steps of `what` are done."""
    listener = _listener.get()
    if listener is not None:
        listener(what, done, total)


@contextmanager
def reporting(listener: Listener) -> Iterator[None]:
    """Send the reports made inside this block to `listener`."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)

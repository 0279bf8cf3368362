"""Show the long phases deep code reports (`guarded_rl.progress`) on a rich console."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import Progress, TaskID

from guarded_rl.progress import Listener


def phase_lines(console: Console) -> Listener:
    """One line as each phase starts (and each recorded update re-executed): readable in a log
    file and on a terminal alike."""

    def listen(what: str, done: int, total: int) -> None:
        if what.startswith("re-executed"):
            console.print(f"  {what}", markup=False, highlight=False)
        elif done == 0:
            label = what.split(":")[0]
            console.print(f"  {label} ({total} step(s)) ...", markup=False, highlight=False)

    return listen


def phase_in_task(progress: Progress, task: TaskID, base: str) -> Listener:
    """On a terminal: the phase in the progress bar's description ("cycles · probing the
    candidate: axis gender 1/4"); elsewhere, lines as in `phase_lines`."""
    if not progress.console.is_terminal:
        return phase_lines(progress.console)

    def listen(what: str, done: int, total: int) -> None:
        text = base if done >= total else f"{base} · {what} {done + 1}/{total}"
        progress.update(task, description=text)

    return listen


def status_lines(console: Console) -> Callable[[str], None]:
    """A plain line for a step of a command (loading, verifying, writing)."""

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    return say

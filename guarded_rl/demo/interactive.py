"""Interactive feedback: the person at the terminal rates each shown item, for real."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from guarded_rl.records import Request, Sample

PERSON = "person-local"  # the terminal user's id (the store keeps only its pseudonym)
PERSON_GROUP = "unspecified"

_ANSWERS = {"y": 1.0, "yes": 1.0, "l": 1.0, "n": 0.0, "no": 0.0, "d": 0.0}


class TerminalFeedback:
    """Asks like / dislike / skip / quit for each shown headline.

    `ask` is the prompt function (`input` by default), so tests and other front ends can drive it.
    Blocked outputs never reach this class: they were screened out before.
    """

    def __init__(
        self,
        *,
        ask: Callable[[str], str] = input,
        show: Callable[[str], None] = print,
        stop: Callable[[], Exception] | None = None,
    ) -> None:
        self.ask = ask
        self.show = show
        self._stop = stop

    def rate(self, shown: Sequence[Sample]) -> dict[str, float]:
        ratings: dict[str, float] = {}
        for sample in shown:
            self.show(f"  > {f'{sample.prompt} {sample.text}'.strip()}")
            while True:
                answer = self.ask("    like it? [y]es / [n]o / [s]kip / [q]uit: ").strip().lower()
                if answer in _ANSWERS:
                    ratings[sample.sample_id] = _ANSWERS[answer]
                    break
                if answer in {"s", "skip", ""}:
                    break
                if answer in {"q", "quit"}:
                    if self._stop is not None:
                        raise self._stop()
                    return ratings
                self.show("    please answer y, n, s or q")
        return ratings


def person_requests(prompt: str) -> Callable[[int], Sequence[Request]]:
    """Every cycle the one person at the terminal reads the feed."""

    def requests_for(cycle: int) -> Sequence[Request]:
        return [Request(PERSON, PERSON_GROUP, prompt)]

    return requests_for

__all__ = [
    "PERSON",
    "TerminalFeedback",
    "person_requests",
]

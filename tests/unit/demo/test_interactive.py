"""TerminalFeedback driven by a scripted `ask`: like / dislike / skip / quit."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from guarded_rl.demo.interactive import PERSON, PERSON_GROUP, TerminalFeedback, person_requests
from guarded_rl.records import Sample


class Stop(Exception):
    pass


def _samples(n: int) -> list[Sample]:
    return [Sample(f"c0-r0-k{i}", 0, PERSON, "sports:", f"item {i}", (0,), (1,)) for i in range(n)]


def _scripted(answers: Iterable[str]) -> tuple[Callable[[str], str], list[str]]:
    it = iter(answers)
    questions: list[str] = []

    def ask(question: str) -> str:
        questions.append(question)
        return next(it)

    return ask, questions


def test_maps_yes_no_skip() -> None:
    ask, questions = _scripted(["y", "n", "s", "YES", " no ", "l", "d", ""])
    shown: list[str] = []
    ratings = TerminalFeedback(ask=ask, show=shown.append).rate(_samples(8))
    assert ratings == {
        "c0-r0-k0": 1.0,
        "c0-r0-k1": 0.0,
        "c0-r0-k3": 1.0,
        "c0-r0-k4": 0.0,
        "c0-r0-k5": 1.0,
        "c0-r0-k6": 0.0,
    }
    assert len(questions) == 8
    assert shown[0] == "  > sports: item 0"


def test_invalid_answer_is_asked_again() -> None:
    ask, questions = _scripted(["maybe", "42", "y"])
    shown: list[str] = []
    ratings = TerminalFeedback(ask=ask, show=shown.append).rate(_samples(1))
    assert ratings == {"c0-r0-k0": 1.0}
    assert len(questions) == 3
    assert shown.count("    please answer y, n, s or q") == 2


def test_quit_raises_the_stop_exception() -> None:
    ask, questions = _scripted(["y", "q", "y"])
    feedback = TerminalFeedback(ask=ask, show=lambda _: None, stop=Stop)
    with pytest.raises(Stop):
        feedback.rate(_samples(3))
    assert len(questions) == 2


def test_quit_without_stop_returns_ratings_so_far() -> None:
    ask, questions = _scripted(["n", "quit", "y"])
    ratings = TerminalFeedback(ask=ask, show=lambda _: None).rate(_samples(3))
    assert ratings == {"c0-r0-k0": 0.0}
    assert len(questions) == 2


def test_nothing_shown_asks_nothing() -> None:
    ask, questions = _scripted([])
    assert TerminalFeedback(ask=ask, show=lambda _: None).rate([]) == {}
    assert questions == []


def test_person_requests() -> None:
    requests_for = person_requests("travel:")
    for cycle in (0, 7):
        requests = list(requests_for(cycle))
        assert len(requests) == 1
        assert (requests[0].subject, requests[0].group, requests[0].prompt) == (
            PERSON,
            PERSON_GROUP,
            "travel:",
        )

"""The screening stage: per-filter thresholds, and failing closed on anything odd."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from guarded_rl.errors import GuardBlockedError
from guarded_rl.policy import SafetyPolicy
from guarded_rl.records import Sample
from guarded_rl.safety.filters import profanity_filter
from guarded_rl.safety.screen import FilterScreen, screen_from_policy


def _sample(i: int, text: str, prompt: str = "") -> Sample:
    return Sample(f"c0-r0-k{i}", 0, "u-x", prompt, text, (0,), (1,))


def contains_x(texts: Sequence[str]) -> list[float]:
    return [1.0 if "x" in t else 0.0 for t in texts]


def test_no_filters_refuses_to_exist() -> None:
    with pytest.raises(GuardBlockedError) as info:
        FilterScreen({})
    assert info.value.exit_code == 3
    assert info.value.field == "safety.filters"


def test_blocks_at_or_above_threshold_and_records_reasons_and_scores() -> None:
    def length_score(texts: Sequence[str]) -> list[float]:
        return [len(t) / 10 for t in texts]

    screen = FilterScreen({"len": (length_score, 0.5), "x": (contains_x, 0.5)})
    samples = [_sample(0, "abcd"), _sample(1, "abcde"), _sample(2, "xyz"), _sample(3, "xxxxxxx")]
    verdicts = screen.screen(samples)
    assert [v.sample_id for v in verdicts] == [s.sample_id for s in samples]
    assert [v.allowed for v in verdicts] == [True, False, False, False]
    assert verdicts[0].reasons == ()
    assert verdicts[1].reasons == ("len",)  # exactly at the threshold blocks
    assert verdicts[2].reasons == ("x",)
    assert verdicts[3].reasons == ("len", "x")
    assert verdicts[1].scores == {"len": 0.5, "x": 0.0}
    assert verdicts[3].scores == {"len": 0.7, "x": 1.0}


def test_filters_see_prompt_and_completion_together() -> None:
    seen: list[str] = []

    def spy(texts: Sequence[str]) -> list[float]:
        seen.extend(texts)
        return [0.0] * len(texts)

    FilterScreen({"spy": (spy, 0.5)}).screen([_sample(0, "world", "hello"), _sample(1, "only")])
    assert seen == ["hello world", "only"]


def test_prompt_content_is_screened_too() -> None:
    verdict = FilterScreen({"x": (contains_x, 0.5)}).screen([_sample(0, "fine", "xenon")])[0]
    assert not verdict.allowed


def test_raising_filter_blocks_every_sample() -> None:
    def broken(texts: Sequence[str]) -> list[float]:
        raise RuntimeError("model file missing")

    screen = FilterScreen({"x": (contains_x, 0.5), "broken": (broken, 0.5)})
    verdicts = screen.screen([_sample(0, "clean"), _sample(1, "also clean")])
    assert [v.allowed for v in verdicts] == [False, False]
    assert all(v.reasons == ("broken:error:RuntimeError",) for v in verdicts)
    assert all("broken" not in v.scores for v in verdicts)
    assert all(v.scores == {"x": 0.0} for v in verdicts)


@pytest.mark.parametrize("n_scores", [0, 1, 3])
def test_wrong_number_of_scores_blocks(n_scores: int) -> None:
    def wrong(texts: Sequence[str]) -> list[float]:
        return [0.0] * n_scores

    verdicts = FilterScreen({"wrong": (wrong, 0.5)}).screen([_sample(0, "a"), _sample(1, "b")])
    assert [v.allowed for v in verdicts] == [False, False]
    assert verdicts[0].reasons == ("wrong:error:ValueError",)


def test_nan_score_blocks() -> None:
    def nan_for_b(texts: Sequence[str]) -> list[float]:
        return [float("nan") if t == "b" else 0.1 for t in texts]

    verdicts = FilterScreen({"f": (nan_for_b, 0.5)}).screen([_sample(0, "a"), _sample(1, "b")])
    assert [v.allowed for v in verdicts] == [True, False]
    assert verdicts[1].reasons == ("f",)


def test_empty_batch() -> None:
    assert FilterScreen({"x": (contains_x, 0.5)}).screen([]) == []


def test_screen_from_policy_uses_named_filters_and_threshold() -> None:
    screen = screen_from_policy(SafetyPolicy(filters=["pii"]))
    assert set(screen.backends) == {"pii"}
    assert screen.backends["pii"].threshold == 0.5
    assert screen.backends["pii"].sees == "original"  # PII is found in what would be shown
    assert screen.backends["pii"].action == "block"

    default = screen_from_policy(SafetyPolicy(profanity_threshold=0.3, pii_action="redact"))
    assert set(default.backends) == {"profanity", "threat", "pii"}
    assert default.backends["profanity"].threshold == 0.3
    assert default.backends["profanity"].sees == "normalized"
    assert default.backends["pii"].action == "redact"


def test_policy_threshold_decides_the_profanity_verdict() -> None:
    sample = _sample(0, "that referee is a clown and a fool")
    score = profanity_filter([sample.text])[0]
    assert 0.02 < score < 0.98
    low = screen_from_policy(SafetyPolicy(filters=["profanity"], profanity_threshold=score - 0.01))
    high = screen_from_policy(SafetyPolicy(filters=["profanity"], profanity_threshold=score + 0.01))
    assert not low.screen([sample])[0].allowed
    assert high.screen([sample])[0].allowed


def test_default_screen_blocks_pii_and_insults_passes_news() -> None:
    screen = screen_from_policy(SafetyPolicy())
    verdicts = screen.screen(
        [
            _sample(0, "Team wins the final", "sports:"),
            _sample(1, "Call Ana at 555-0134 tonight", "sports:"),
            _sample(2, "You stupid idiot referee", "sports:"),
        ]
    )
    assert [v.allowed for v in verdicts] == [True, False, False]
    assert "pii" in verdicts[1].reasons
    assert "profanity" in verdicts[2].reasons


@pytest.mark.parametrize(
    ("bad_score", "error"), [(None, "TypeError"), ("high", "ValueError"), ([0.1], "TypeError")]
)
def test_non_numeric_score_blocks_instead_of_crashing(bad_score: object, error: str) -> None:
    def odd(texts: Sequence[str]) -> list[object]:
        return [0.0] + [bad_score] * (len(texts) - 1)

    screen = FilterScreen({"odd": (odd, 0.5), "x": (contains_x, 0.5)})
    verdicts = screen.screen([_sample(0, "a"), _sample(1, "b")])
    assert [v.allowed for v in verdicts] == [False, False]
    assert all(v.reasons == (f"odd:error:{error}",) for v in verdicts)


def test_numpy_scores_are_numbers() -> None:
    import numpy as np

    def as_numpy(texts: Sequence[str]) -> np.ndarray:
        return np.array([0.9 if "x" in t else 0.1 for t in texts])

    verdicts = FilterScreen({"np": (as_numpy, 0.5)}).screen([_sample(0, "x"), _sample(1, "y")])
    assert [v.allowed for v in verdicts] == [False, True]
    assert verdicts[1].scores == {"np": 0.1}

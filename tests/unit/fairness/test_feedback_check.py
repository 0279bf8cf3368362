"""Per-group like rates and volumes of the feedback behind an update (fairlearn MetricFrame)."""

from __future__ import annotations

import pytest

from guarded_rl.fairness.feedback_check import feedback_by_group
from guarded_rl.records import Feedback


def _ratings(group: str, rewards: list[float], source: str = "person") -> list[Feedback]:
    return [
        Feedback(f"{group}-{i}", f"u-{group}{i}", r, source, group)  # type: ignore[arg-type]
        for i, r in enumerate(rewards)
    ]


def test_rates_counts_and_difference_by_hand() -> None:
    feedback = (
        _ratings("A", [1, 1, 1, 0, 0, 0])  # 3/6 = 0.5
        + _ratings("B", [1, 1, 1, 1, 0])  # 4/5 = 0.8
        + _ratings("C", [1, 1])  # too small to compare
        + _ratings("A", [-1, -1, -1], source="penalty")  # not people's views
        + _ratings("D", [-1] * 9, source="penalty")
    )
    result = feedback_by_group(feedback, min_group_size=5)
    assert result.name == "feedback_by_group"
    assert result.passed
    m = result.metrics
    assert m["ratings"] == 13
    assert m["count_by_group"] == {"A": 6, "B": 5, "C": 2}
    assert m["like_rate_by_group"] == {"A": 0.5, "B": 0.8, "C": 1.0}
    assert m["like_rate_difference"] == pytest.approx(0.3)
    assert m["too_small"] == ["C"]


def test_rates_are_rounded() -> None:
    feedback = _ratings("A", [1, 0, 0]) + _ratings("B", [1, 1, 0])
    m = feedback_by_group(feedback, min_group_size=1).metrics
    assert m["like_rate_by_group"] == {"A": 0.3333, "B": 0.6667}
    assert m["like_rate_difference"] == pytest.approx(0.3334)
    assert m["too_small"] == []


def test_difference_is_max_minus_min_over_comparable_groups() -> None:
    feedback = _ratings("A", [1, 0]) + _ratings("B", [1, 1]) + _ratings("C", [0, 0])
    assert feedback_by_group(feedback, min_group_size=2).metrics["like_rate_difference"] == 1.0
    # with C too small, only A and B compare
    feedback = _ratings("A", [1, 0]) + _ratings("B", [1, 1]) + _ratings("C", [0])
    m = feedback_by_group(feedback, min_group_size=2).metrics
    assert m["like_rate_difference"] == 0.5
    assert m["too_small"] == ["C"]


def test_fewer_than_two_comparable_groups_gives_no_difference() -> None:
    feedback = _ratings("A", [1, 0, 1, 0, 1]) + _ratings("B", [1])
    m = feedback_by_group(feedback, min_group_size=5).metrics
    assert m["like_rate_difference"] is None
    assert m["too_small"] == ["B"]
    assert m["like_rate_by_group"] == {"A": 0.6, "B": 1.0}


def test_only_penalties_or_nothing_means_no_ratings() -> None:
    for feedback in ([], _ratings("A", [-1, -1], source="penalty")):
        result = feedback_by_group(feedback, min_group_size=1)
        assert result.passed
        assert result.metrics == {"ratings": 0, "ratings_without_group": 0}
        assert result.message == "no ratings with a group"


def test_ratings_without_a_group_are_counted_not_compared() -> None:
    feedback = _ratings("A", [1, 0, 1]) + _ratings("", [1, 1])
    m = feedback_by_group(feedback, min_group_size=1).metrics
    assert m["count_by_group"] == {"A": 3}
    assert m["ratings_without_group"] == 2

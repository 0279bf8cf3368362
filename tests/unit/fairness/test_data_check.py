"""The data side of the bias check: who the batch's feedback comes from, and how it differs."""

from __future__ import annotations

import pytest

from guarded_rl.fairness.data_check import DataBiasCheck
from guarded_rl.records import Feedback


def _ratings(group: str, rewards: list[float], source: str = "person") -> list[Feedback]:
    return [
        Feedback(f"{group}-{i}", f"u-{group}{i}", r, source, group)  # type: ignore[arg-type]
        for i, r in enumerate(rewards)
    ]


def _check(**overrides: object) -> DataBiasCheck:
    settings: dict[str, object] = {
        "max_group_share": 0.8,
        "max_reward_gap": 0.5,
        "min_group_size": 3,
    }
    settings.update(overrides)
    return DataBiasCheck(**settings)  # type: ignore[arg-type]


def test_figures_by_hand() -> None:
    feedback = (
        _ratings("A", [1, 1, 1, 0])  # mean 0.75, like-rate 0.75
        + _ratings("B", [1, 0, 0, 0])  # mean 0.25
        + _ratings("C", [1])  # too small to compare
        + _ratings("A", [-1, -1], source="penalty")  # not a person's view
        + _ratings("", [1, 1])  # no fairness consent: counted, not grouped
    )
    result = _check().check(feedback)
    assert result.name == "bias_data" and result.passed, result.message
    m = result.metrics
    assert m["ratings"] == 9 and m["ratings_without_group"] == 2
    assert m["by_group"]["A"] == {
        "ratings": 4,
        "share_of_batch": pytest.approx(4 / 9, abs=1e-4),
        "share_of_population": pytest.approx(4 / 9, abs=1e-4),
        "mean_reward": 0.75,
        "like_rate": 0.75,
    }
    assert m["reward_difference"] == 0.5
    assert m["reward_ratio"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["like_rate_difference"] == 0.5
    assert m["too_small"] == ["C"]


def test_a_batch_from_one_group_only_fails() -> None:
    check = _check()
    assert check.check(_ratings("A", [1, 0, 1]) + _ratings("B", [0, 1, 1])).passed
    result = check.check(_ratings("A", [1, 0, 1, 1, 0, 1]))
    assert not result.passed
    assert "group A holds 100% of the batch" in result.message
    # the population share is cumulative over the batches seen: 9 of 12 ratings were A's
    assert result.metrics["by_group"]["A"]["share_of_population"] == 0.75


def test_reward_disparity_above_the_threshold_fails_and_names_the_groups() -> None:
    result = _check(max_reward_gap=0.3).check(
        _ratings("A", [1] * 10) + _ratings("B", [0] * 9 + [1])
    )
    assert not result.passed
    m = result.metrics
    assert m["reward_difference"] == 0.9
    assert m["reward_difference_se"] == pytest.approx(0.1, abs=1e-4)  # sqrt(0.1/10)
    assert m["reward_difference_lower_95"] == pytest.approx(0.704, abs=1e-3)
    assert "mean reward of A exceeds B by 0.90" in result.message
    assert m["findings"] == [result.message]


def test_a_gap_within_sampling_noise_does_not_fail() -> None:
    # 0.67 apart, but three ratings a group cannot show it is more than 0.3
    result = _check(max_reward_gap=0.3).check(_ratings("A", [1, 1, 1]) + _ratings("B", [0, 0, 1]))
    assert result.passed
    assert result.metrics["reward_difference"] == pytest.approx(0.6667, abs=1e-4)
    assert result.metrics["reward_difference_lower_95"] < 0.3


def test_groups_too_small_to_compare_raise_no_disparity() -> None:
    result = _check(max_reward_gap=0.1).check(_ratings("A", [1, 1, 1]) + _ratings("B", [0, 0]))
    assert result.passed
    assert result.metrics["reward_difference"] is None


def test_no_grouped_ratings_pass_with_the_count() -> None:
    result = _check().check(_ratings("", [1, 0]) + _ratings("A", [-1], source="penalty"))
    assert result.passed
    assert result.metrics["ratings"] == 0 and result.metrics["ratings_without_group"] == 2

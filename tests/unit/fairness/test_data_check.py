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


# -- the windowed check: a gap each batch is too small to show, over the last N updates --------

WINDOW_PURPOSES = ["training", "fairness-analysis"]


def _store_with_batches(tmp_path, cycles: int):  # type: ignore[no-untyped-def]
    """Six readers per group rate every cycle: A likes 5 of 6, B 1 of 6 (gap 0.67)."""
    from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore

    store = SQLiteFeedbackStore(tmp_path / "feedback.sqlite")
    subjects = {
        g: [store.grant(f"{g}-{i}", WINDOW_PURPOSES, text_sha256="0" * 64) for i in range(6)]
        for g in "AB"
    }
    for cycle in range(cycles):
        feedback = [
            Feedback(f"c{cycle}-{g}{i}", s, reward, "person", g)
            for g, rewards in (("A", [1, 1, 1, 1, 1, 0]), ("B", [0, 0, 0, 0, 0, 1]))
            for i, (s, reward) in enumerate(zip(subjects[g], rewards, strict=True))
        ]
        store.register_items([f.sample_id for f in feedback], cycle=cycle)
        store.record(feedback, purpose="training", cycle=cycle)
    return store, subjects


def _windowed(store, n: int = 10):  # type: ignore[no-untyped-def]
    from guarded_rl.fairness.data_check import store_window

    check = _check(max_reward_gap=0.45, min_group_size=5, max_group_share=0.95,
                   window_updates=n, window=store_window(store, "training"))  # fmt: skip
    return check


def _batch(store, cycle: int):  # type: ignore[no-untyped-def]
    from guarded_rl.records import Batch

    feedback = tuple(store.training_feedback(cycle, purpose="training"))
    return Batch(cycle, (), tuple(f.reward for f in feedback), (), feedback)


def test_a_persistent_gap_fails_the_window_while_each_batch_alone_passes(tmp_path) -> None:
    store, _ = _store_with_batches(tmp_path, 10)
    check = _windowed(store)
    results = [check(None, _batch(store, c)) for c in range(10)]  # type: ignore[arg-type]
    for c in range(10):  # one batch of 6 + 6 ratings cannot show the gap exceeds 0.45
        alone = _check(max_reward_gap=0.45, min_group_size=5, max_group_share=0.95)
        assert alone.check(_batch(store, c).feedback).passed
    first, last = results[0].metrics["window"], results[-1].metrics["window"]
    assert results[0].passed and first["cycles"] == [0] and first["passed"]
    assert not results[-1].passed and not last["passed"]
    assert last["cycles"] == list(range(10)) and last["ratings"] == 120
    assert last["reward_difference"] == pytest.approx(0.6667, abs=1e-4)
    assert last["reward_difference_lower_95"] > 0.45
    assert "over the last 10 updates (120 ratings) mean reward of A exceeds B" in last["finding"]
    assert results[-1].message == last["finding"]
    store.close()


def test_the_window_is_the_last_n_updates(tmp_path) -> None:
    store, _ = _store_with_batches(tmp_path, 10)
    result = _windowed(store, n=3)(None, _batch(store, 9))  # type: ignore[arg-type]
    assert result.metrics["window"]["cycles"] == [7, 8, 9] and result.passed  # 36 ratings
    store.close()


def test_the_window_counts_only_ratings_still_consented_for_fairness_analysis(tmp_path) -> None:
    store, subjects = _store_with_batches(tmp_path, 10)
    for subject in subjects["B"]:
        store.revoke(subject, ["fairness-analysis"])
    result = _windowed(store)(None, _batch(store, 9))  # type: ignore[arg-type]
    window = result.metrics["window"]
    assert window["ratings_by_group"] == {"A": 60} and window["reward_difference"] is None
    assert window["passed"] and window["finding"] is None
    store.close()

"""Bias check on the data that drives an update: whose feedback it is and how it differs.

A model that learns from feedback learns the tastes of whoever gives most of it. Over the
update's batch, fairlearn's `MetricFrame` gives per group (only groups stored under a
`fairness-analysis` consent) the number of ratings, the mean reward and the like-rate; the
check compares each group's share of the batch with its share of all rated feedback seen so far
(the consenting population), and reports the largest between-group difference and ratio.

It fails when one group holds more than `max_group_share` of the batch, or when the mean
reward of two comparable groups (each with at least `min_group_size` ratings) differs by more
than `max_reward_gap` beyond sampling noise: the gap's 95 % lower bound (gap - 1.96 standard
errors) must exceed the limit, so a dozen ratings that happen to differ do not stop an update,
while a real disparity does. What a failure leads to (hold for review, or reject) is `on_fail`.

One batch is often too small for that bound to exceed the limit, so a gap that persists over
many updates would pass each of them. The windowed check pools the ratings of the last
`window_updates` cycles that have rated feedback (this update's included), read again from the
feedback store so only rows whose training and fairness-analysis consents are still current
count, and fails when the pooled gap's 95 % lower bound exceeds the same limit.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import numpy as np

from guarded_rl.records import Batch, CheckResult, Feedback, UpdateProposal

NAME = "bias_data"
#: A window never looks further back than this many cycles for rated ones (bounded work).
WINDOW_LOOKBACK = 4

#: `(this update's cycle, n) -> (the cycles pooled, their feedback)`: the last n cycles with
#: rated feedback up to this one, as the feedback store holds them now (consent respected).
WindowSource = Callable[[int, int], tuple[list[int], list[Feedback]]]


class _TrainingFeedback(Protocol):
    def training_feedback(self, cycle: int, *, purpose: str = ...) -> list[Feedback]: ...


def store_window(store: _TrainingFeedback, purpose: str) -> WindowSource:
    """A window read from the feedback store: rows of subjects whose `purpose` consent is
    current, with a group only under a current fairness-analysis consent (else not compared)."""

    def window(cycle: int, n: int) -> tuple[list[int], list[Feedback]]:
        cycles: list[int] = []
        pooled: list[Feedback] = []
        for c in range(cycle, max(-1, cycle - WINDOW_LOOKBACK * n), -1):
            rows = [f for f in store.training_feedback(c, purpose=purpose) if f.source == "person"]
            if rows:
                cycles.append(c)
                pooled.extend(rows)
            if len(cycles) == n:
                break
        return sorted(cycles), pooled

    return window


def _mean(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true)) if len(y_true) else float("nan")


def _variance_of_mean(values: np.ndarray) -> float:
    """Squared standard error of a group's mean reward (sample variance / n)."""
    if len(values) < 2:
        return math.inf
    return float(np.var(values, ddof=1)) / len(values)


def _like_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true > 0.5)) if len(y_true) else float("nan")


class DataBiasCheck:
    """`(proposal, batch) -> CheckResult` over the person feedback of the batch."""

    name = NAME

    def __init__(
        self,
        *,
        max_group_share: float,
        max_reward_gap: float,
        min_group_size: int,
        on_fail: Literal["escalate", "block"] = "escalate",
        window_updates: int = 1,
        window: WindowSource | None = None,
    ) -> None:
        self.max_group_share = max_group_share
        self.max_reward_gap = max_reward_gap
        self.min_group_size = min_group_size
        self.on_fail = on_fail
        self.window_updates = window_updates
        self.window = window
        #: ratings per group over every batch checked so far: the consenting population
        self.population: Counter[str] = Counter()

    def __call__(self, proposal: UpdateProposal, batch: Batch) -> CheckResult:
        result = self.check(batch.feedback)
        if self.window is None or self.window_updates < 2:
            return result
        cycles, pooled = self.window(batch.cycle, self.window_updates)
        return self.with_window(result, cycles, pooled)

    def with_window(
        self, result: CheckResult, cycles: Sequence[int], pooled: Sequence[Feedback]
    ) -> CheckResult:
        """`result` with the windowed gap over `pooled` (the ratings of `cycles`) added; it
        fails when the pooled gap's 95 % lower bound exceeds `max_reward_gap`."""
        rated = [f for f in pooled if f.source == "person" and f.group]
        gap = _reward_gap(rated, self.min_group_size)
        finding = None
        lower = gap.get("reward_difference_lower_95")
        if lower is not None and lower > self.max_reward_gap:
            finding = (
                f"over the last {len(cycles)} updates ({len(rated)} ratings) mean reward of "
                f"{gap['high']} exceeds {gap['low']} by {gap['reward_difference']:.2f} "
                f"(95% lower bound {lower:.2f} > max {self.max_reward_gap:.2f})"
            )
        window = {
            "updates": self.window_updates,
            "cycles": list(cycles),
            "ratings": len(rated),
            **{k: v for k, v in gap.items() if k not in ("high", "low")},
            "passed": finding is None,
            "finding": finding,
        }
        findings = [*result.metrics.get("findings", []), *([finding] if finding else [])]
        metrics = {**result.metrics, "window": window, "findings": findings}
        message = "; ".join(findings) if findings else result.message
        return CheckResult(NAME, passed=result.passed and finding is None, metrics=metrics,
                           message=message)  # fmt: skip

    def check(self, feedback: Sequence[Feedback]) -> CheckResult:
        from fairlearn.metrics import MetricFrame

        people = [f for f in feedback if f.source == "person"]
        rated = [f for f in people if f.group]  # a group is known only under fairness consent
        base = {
            "ratings": len(rated),
            "ratings_without_group": len(people) - len(rated),
            "max_group_share": self.max_group_share,
            "max_reward_gap": self.max_reward_gap,
            "on_fail": self.on_fail,
        }
        if not rated:
            return CheckResult(NAME, passed=True, metrics=base, message="no ratings with a group")
        y = np.array([f.reward for f in rated], dtype=float)
        groups = np.array([f.group for f in rated])
        frame = MetricFrame(
            metrics={"mean_reward": _mean, "like_rate": _like_rate},
            y_true=y,
            y_pred=y,
            sensitive_features=groups,
        )
        counts = Counter(str(g) for g in groups)
        self.population.update(counts)
        seen = sum(self.population.values())
        table = frame.by_group
        by_group = {
            str(g): {
                "ratings": counts[str(g)],
                "share_of_batch": round(counts[str(g)] / len(rated), 4),
                "share_of_population": round(self.population[str(g)] / seen, 4),
                "mean_reward": round(float(table.loc[g, "mean_reward"]), 4),
                "like_rate": round(float(table.loc[g, "like_rate"]), 4),
            }
            for g in table.index
        }
        comparable = [g for g, row in by_group.items() if row["ratings"] >= self.min_group_size]
        findings = []
        top = max(by_group, key=lambda g: by_group[g]["share_of_batch"])
        top_share = by_group[top]["share_of_batch"]
        if top_share > self.max_group_share:
            findings.append(
                f"group {top} holds {top_share:.0%} of the batch "
                f"(population {by_group[top]['share_of_population']:.0%}, "
                f"max {self.max_group_share:.0%})"
            )
        reward_gap = reward_ratio = like_gap = gap_se = gap_lower = None
        if len(comparable) >= 2:
            rewards = {g: by_group[g]["mean_reward"] for g in comparable}
            likes = {g: by_group[g]["like_rate"] for g in comparable}
            high, low = max(rewards, key=rewards.__getitem__), min(rewards, key=rewards.__getitem__)
            reward_gap = round(rewards[high] - rewards[low], 4)
            reward_ratio = round(rewards[low] / rewards[high], 4) if rewards[high] > 0 else None
            like_gap = round(max(likes.values()) - min(likes.values()), 4)
            se = math.sqrt(sum(_variance_of_mean(y[groups == g]) for g in (high, low)))
            gap_se = round(se, 4) if math.isfinite(se) else None
            gap_lower = round(reward_gap - 1.96 * se, 4) if math.isfinite(se) else None
            if gap_lower is not None and gap_lower > self.max_reward_gap:
                findings.append(
                    f"mean reward of {high} exceeds {low} by {reward_gap:.2f} "
                    f"(95% lower bound {gap_lower:.2f} > max {self.max_reward_gap:.2f})"
                )
        metrics = {
            **base,
            "by_group": by_group,
            "reward_difference": reward_gap,
            "reward_difference_se": gap_se,
            "reward_difference_lower_95": gap_lower,
            "reward_ratio": reward_ratio,
            "like_rate_difference": like_gap,
            "too_small": sorted(set(by_group) - set(comparable)),
            "findings": findings,
        }
        message = "; ".join(findings) if findings else "within limits"
        return CheckResult(NAME, passed=not findings, metrics=metrics, message=message)


def _reward_gap(rated: Sequence[Feedback], min_group_size: int) -> dict[str, Any]:
    """The largest mean-reward gap between groups with at least `min_group_size` ratings, its
    standard error and 95 % lower bound (None where fewer than two groups compare)."""
    by_group: dict[str, list[float]] = {}
    for f in rated:
        by_group.setdefault(f.group, []).append(f.reward)
    comparable = {g: np.array(v) for g, v in by_group.items() if len(v) >= min_group_size}
    out: dict[str, Any] = {
        "reward_difference": None,
        "reward_difference_se": None,
        "reward_difference_lower_95": None,
        "ratings_by_group": {g: len(v) for g, v in sorted(by_group.items())},
        "high": None,
        "low": None,
    }
    if len(comparable) < 2:
        return out
    means = {g: float(np.mean(v)) for g, v in comparable.items()}
    high, low = max(means, key=means.__getitem__), min(means, key=means.__getitem__)
    gap = round(means[high] - means[low], 4)
    se = math.sqrt(_variance_of_mean(comparable[high]) + _variance_of_mean(comparable[low]))
    out.update(reward_difference=gap, high=high, low=low)
    if math.isfinite(se):
        out.update(
            reward_difference_se=round(se, 4), reward_difference_lower_95=round(gap - 1.96 * se, 4)
        )
    return out

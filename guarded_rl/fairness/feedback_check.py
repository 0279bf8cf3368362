"""Bias check on the feedback that drives an update: who it comes from and how it differs.

Uses fairlearn's `MetricFrame` to compute, per group of the sensitive attribute, the share of
ratings and the like-rate, and the largest between-group difference. This issue records the
figures with every update; the gate rules that act on them come with the bias-check policy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from guarded_rl.records import CheckResult, Feedback


def _like_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true)) if len(y_true) else float("nan")


def feedback_by_group(feedback: Sequence[Feedback], *, min_group_size: int) -> CheckResult:
    """Like-rate and volume of person feedback per group (penalties are not people's views)."""
    from fairlearn.metrics import MetricFrame

    people = [f for f in feedback if f.source == "person"]
    rated = [f for f in people if f.group]  # a group is known only under fairness consent
    if not rated:
        return CheckResult(
            "feedback_by_group",
            passed=True,
            metrics={"ratings": 0, "ratings_without_group": len(people)},
            message="no ratings with a group",
        )
    y = np.array([f.reward for f in rated], dtype=float)
    groups = np.array([f.group for f in rated])
    frame = MetricFrame(metrics=_like_rate, y_true=y, y_pred=y, sensitive_features=groups)
    by_group = frame.by_group
    names, sizes = np.unique(groups, return_counts=True)
    counts = {str(g): int(n) for g, n in zip(names, sizes, strict=True)}
    rates = {str(g): round(float(by_group.loc[g]), 4) for g in by_group.index}
    comparable = [g for g, c in counts.items() if c >= min_group_size]
    gap = (
        round(max(rates[g] for g in comparable) - min(rates[g] for g in comparable), 4)
        if len(comparable) >= 2
        else None
    )
    return CheckResult(
        "feedback_by_group",
        passed=True,
        metrics={
            "ratings": len(rated),
            "ratings_without_group": len(people) - len(rated),
            "count_by_group": counts,
            "like_rate_by_group": rates,
            "like_rate_difference": gap,
            "too_small": sorted(set(counts) - set(comparable)),
        },
        message="recorded",
    )

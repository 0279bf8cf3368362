"""The content-safety stage: every generated output is screened before anyone sees it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from guarded_rl.errors import GuardBlockedError
from guarded_rl.policy import SafetyPolicy
from guarded_rl.records import Sample, Verdict
from guarded_rl.safety.filters import TextFilter, pii_filter, profanity_filter


class SafetyScreen(Protocol):
    """Decides, for each sample, whether it may be shown."""

    def screen(self, samples: Sequence[Sample]) -> list[Verdict]: ...


class FilterScreen:
    """Blocks a sample when any filter's score reaches that filter's threshold.

    Fails closed: with no filters it refuses to exist, and a filter that raises or returns the
    wrong number of scores blocks the whole batch, with the reason recorded.
    """

    def __init__(self, filters: Mapping[str, tuple[TextFilter, float]]) -> None:
        if not filters:
            raise GuardBlockedError(
                "no safety filters configured; refusing to screen nothing",
                field="safety.filters",
                got=[],
                expected="at least one filter",
            )
        self.filters = dict(filters)

    def screen(self, samples: Sequence[Sample]) -> list[Verdict]:
        texts = [f"{s.prompt} {s.text}".strip() for s in samples]
        reasons: list[list[str]] = [[] for _ in samples]
        scores: list[dict[str, float]] = [{} for _ in samples]
        for name, (fn, threshold) in self.filters.items():
            try:
                values = [float(v) for v in fn(texts)]  # non-numbers block too
                if len(values) != len(texts):
                    raise ValueError(f"returned {len(values)} scores for {len(texts)} texts")
            except Exception as exc:  # a broken filter must block, never pass
                for i in range(len(samples)):
                    reasons[i].append(f"{name}:error:{type(exc).__name__}")
                continue
            for i, value in enumerate(values):
                scores[i][name] = round(float(value), 4)
                if not value < threshold:  # NaN counts as a hit
                    reasons[i].append(name)
        return [
            Verdict(s.sample_id, allowed=not r, reasons=tuple(r), scores=sc)
            for s, r, sc in zip(samples, reasons, scores, strict=True)
        ]


def screen_from_policy(policy: SafetyPolicy) -> FilterScreen:
    """The default screen: the filters a policy names, with its thresholds."""
    known: dict[str, tuple[TextFilter, float]] = {
        "profanity": (profanity_filter, policy.profanity_threshold),
        "pii": (pii_filter, 0.5),
    }
    return FilterScreen({name: known[name] for name in policy.filters})

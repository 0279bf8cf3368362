"""A guarded reward function for trainers that take rewards as plain callables (TRL's
`GRPOTrainer` and `RLOOTrainer`: `reward_funcs=[guarded_reward(my_reward, ...)]`).

The wrapper screens every completion with the policy's content-safety filters. A blocked
completion gets the policy's `blocked_penalty` instead of the wrapped reward; a redacted one
(personal data) gets at most `redacted_reward_cap`. With a feedback store and a `user_id`
column in the dataset, completions for people without a current consent for the policy's
purpose get `None`, which TRL treats as "no reward from this function", so they do not train
the model. Counts of what it did are kept in `.stats`; `take()` hands the rewards and counts
since the last call to `GuardCallback(rewards=...)`, which records them with each optimizer step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from guarded_rl.errors import InputError, require_callable
from guarded_rl.policy import GuardPolicy, load_policy
from guarded_rl.records import Sample

#: TRL's reward-function contract: `(prompts=..., completions=..., **columns) -> rewards`.
RewardFunc = Callable[..., Sequence[float | None]]


class GuardedReward:
    """Wraps a reward function; call it exactly like the function it wraps."""

    def __init__(
        self,
        reward_fn: RewardFunc,
        *,
        policy: GuardPolicy | str | None = None,
        store: Any = None,
        user_column: str = "user_id",
    ) -> None:
        """`store`: a `FeedbackStore` (e.g. `SQLiteFeedbackStore`) holding people's consent;
        `user_column`: the dataset column naming the person each prompt is for."""
        require_callable(
            reward_fn,
            what="reward function",
            field="reward_fn",
            expected="a function (prompts, completions, **kwargs) -> list of floats",
        )
        from guarded_rl.safety.screen import screen_from_policy

        self.reward_fn = reward_fn
        self.policy = policy if isinstance(policy, GuardPolicy) else load_policy(policy)
        self.screen = screen_from_policy(self.policy.safety)
        self.store = store
        self.user_column = user_column
        self.stats: Counter[str] = Counter()
        self._since: list[float] = []
        self._since_stats: Counter[str] = Counter()
        self.__name__ = f"guarded_{getattr(reward_fn, '__name__', 'reward')}"

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        texts = [_text(c) for c in completions]
        samples = [
            Sample(f"r{i}", 0, "", _text(p), t, (), ())
            for i, (p, t) in enumerate(zip(prompts, texts, strict=True))
        ]
        verdicts = self.screen.screen(samples)
        consented = self._consented(kwargs.get(self.user_column), len(texts))
        raw = list(self.reward_fn(prompts=prompts, completions=completions, **kwargs))
        if len(raw) != len(texts):
            raise InputError(
                "the wrapped reward function returned the wrong number of rewards",
                field="reward_fn",
                got=len(raw),
                expected=f"{len(texts)} (one per completion)",
            )
        safety = self.policy.safety
        counts: Counter[str] = Counter(completions=len(texts))
        rewards: list[float | None] = []
        for value, verdict, ok in zip(raw, verdicts, consented, strict=True):
            if not ok:
                counts["no_consent"] += 1
                rewards.append(None)
            elif verdict.action in ("block", "escalate"):
                counts["blocked"] += 1
                rewards.append(safety.blocked_penalty)
            elif verdict.action == "redact" and value is not None:
                cap = safety.redacted_reward_cap
                counts["redacted"] += 1
                rewards.append(min(float(value), cap) if cap is not None else float(value))
            else:
                rewards.append(None if value is None else float(value))
        self.stats.update(counts)
        self._since_stats.update(counts)
        self._since.extend(r for r in rewards if r is not None)
        return rewards

    def take(self) -> tuple[list[float], dict[str, int]]:
        """The rewards given (None left out) and the counts since the last `take()`."""
        rewards, counts = self._since, dict(self._since_stats)
        self._since, self._since_stats = [], Counter()
        return rewards, counts

    def _consented(self, users: Sequence[str] | None, n: int) -> list[bool]:
        if self.store is None:
            return [True] * n
        if users is None or len(users) != n:
            raise InputError(
                "consent cannot be checked: the dataset has no column naming each person",
                field=self.user_column,
                expected=f"a '{self.user_column}' column in the training dataset",
            )
        subjects = [self.store.pseudonym(u) for u in users]
        current = self.store.current_purposes(subjects)
        purpose = self.policy.consent.purpose
        return [purpose in current.get(s, ()) for s in subjects]


def guarded_reward(reward_fn: RewardFunc, **kwargs: Any) -> GuardedReward:
    """`GuardedReward(reward_fn, **kwargs)`, for `reward_funcs=[guarded_reward(fn)]`."""
    return GuardedReward(reward_fn, **kwargs)


def _text(value: Any) -> str:
    """A completion as TRL passes it: plain text, or a conversation (list of messages)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return str(value[-1].get("content", ""))
    return str(value)

__all__ = [
    "GuardedReward",
    "guarded_reward",
]

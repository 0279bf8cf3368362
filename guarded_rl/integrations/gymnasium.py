"""Guard rails for control policies trained on Gymnasium environments.

`ShieldedEnv` is an action shield: a constraint of the policy (`shield(observation, action)`)
sees every action before the environment does and returns the action to take: the same one
when it is safe, a replacement when not. An unsafe action is never executed; each
intervention is counted, and an optional `penalty` is added to that step's reward so the
policy learns not to propose it (as blocked text enters training with a penalty). Finished
episodes are kept as records (return, length, interventions) and `record_episodes` writes
their aggregate, never the trajectories, to a guarded run's audit log. Updates to the policy go
through `GuardedLoop.step()` like any other PyTorch loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium
import numpy as np

from guarded_rl.errors import GuardBlockedError, require_callable

#: `shield(observation, action) -> action to take` (return `action` itself when it is safe).
Shield = Callable[[Any, Any], Any]


@dataclass(frozen=True, slots=True)
class EpisodeRecord:
    """One finished episode, in numbers."""

    episode_return: float
    length: int
    interventions: int
    terminated: bool  # ended by the environment (e.g. a crash), not by a time limit


class ShieldedEnv(gymnasium.Wrapper):
    """Vetoes or replaces unsafe actions before the wrapped environment sees them.

    Fails closed: a shield that raises, or returns an action outside the action space, stops
    the step with `GuardBlockedError`; the proposed action is never executed unchecked.
    """

    def __init__(self, env: gymnasium.Env, shield: Shield, *, penalty: float = 0.0) -> None:
        require_callable(
            shield, field="shield", expected="a function (observation, action) -> action to take"
        )
        super().__init__(env)
        self.shield = shield
        self.penalty = float(penalty)
        self.interventions = 0  # over the wrapper's life
        self.steps = 0
        self._episodes: list[EpisodeRecord] = []
        self._observation: Any = None
        self._return = 0.0
        self._length = 0
        self._episode_interventions = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        observation, info = self.env.reset(**kwargs)
        self._observation = observation
        self._return, self._length, self._episode_interventions = 0.0, 0, 0
        return observation, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        try:
            taken = self.shield(self._observation, action)
        except Exception as exc:
            raise GuardBlockedError(
                f"the action shield raised {type(exc).__name__}; no action was executed",
                field="shield",
            ) from exc
        if not self.action_space.contains(taken):
            raise GuardBlockedError(
                "the action shield returned an action outside the action space",
                field="shield",
                got=repr(taken)[:40],
                expected=str(self.action_space),
            )
        replaced = not _same(taken, action)
        observation, reward, terminated, truncated, info = self.env.step(taken)
        reward = float(reward) + (self.penalty if replaced else 0.0)
        self.steps += 1
        self._length += 1
        self._return += reward
        if replaced:
            self.interventions += 1
            self._episode_interventions += 1
        self._observation = observation
        info = {**info, "shield_replaced": replaced, "action_taken": taken}
        if terminated or truncated:
            self._episodes.append(
                EpisodeRecord(self._return, self._length, self._episode_interventions, terminated)
            )
        return observation, reward, terminated, truncated, info

    def pop_episodes(self) -> list[EpisodeRecord]:
        """The episodes finished since the last call."""
        done, self._episodes = self._episodes, []
        return done


def record_episodes(guard: Any, episodes: Sequence[EpisodeRecord]) -> dict[str, Any]:
    """Write the aggregate of `episodes` to a `GuardedLoop`'s audit log (an `episodes` entry)."""
    if not episodes:
        return {}
    returns = np.array([e.episode_return for e in episodes], dtype=float)
    payload = {
        "step": guard.steps,
        "episodes": len(episodes),
        "mean_return": round(float(returns.mean()), 6),
        "min_return": round(float(returns.min()), 6),
        "mean_length": round(float(np.mean([e.length for e in episodes])), 3),
        "interventions": int(sum(e.interventions for e in episodes)),
        "terminated": int(sum(e.terminated for e in episodes)),
    }
    guard.audit.append("episodes", payload)
    return payload


def _same(a: Any, b: Any) -> bool:
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))

__all__ = [
    "EpisodeRecord",
    "ShieldedEnv",
    "record_episodes",
]

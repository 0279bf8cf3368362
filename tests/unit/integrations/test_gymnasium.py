"""The action shield: unsafe actions never reach the environment, each intervention is counted
and penalised, a failing shield blocks, and episode aggregates reach the audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium
import pytest
import torch
from torch import nn

from guarded_rl.audit.log import read_log
from guarded_rl.commands.verify import verify_run
from guarded_rl.errors import GuardBlockedError, InputError
from guarded_rl.integrations.gymnasium import ShieldedEnv, record_episodes
from guarded_rl.integrations.torch import GuardedLoop


class Recording(gymnasium.Wrapper):  # type: ignore[type-arg]
    """Remembers the actions the environment actually received."""

    def __init__(self, env: gymnasium.Env) -> None:  # type: ignore[type-arg]
        super().__init__(env)
        self.received: list[int] = []

    def step(self, action: Any) -> Any:
        self.received.append(int(action))
        return self.env.step(action)


def never_right(observation: Any, action: Any) -> Any:
    return 0 if int(action) == 1 else action


def _play(env: ShieldedEnv, actions: list[int]) -> list[tuple[float, dict[str, Any]]]:
    env.reset(seed=0)
    out = []
    for a in actions:
        _, reward, terminated, truncated, info = env.step(a)
        out.append((float(reward), info))
        if terminated or truncated:
            break
    return out


def test_unsafe_actions_are_replaced_counted_and_penalised() -> None:
    inner = Recording(gymnasium.make("CartPole-v1"))
    env = ShieldedEnv(inner, never_right, penalty=-0.5)
    steps = _play(env, [0, 1, 0, 1, 1])
    assert inner.received == [0] * len(steps)  # action 1 never reached the environment
    replaced = [info["shield_replaced"] for _, info in steps]
    assert replaced == [False, True, False, True, True][: len(steps)]
    assert env.interventions == sum(replaced)
    assert [r for r, _ in steps] == [1.0 - 0.5 * x for x in replaced]  # CartPole pays 1 a step
    assert all(info["action_taken"] == 0 for _, info in steps)


def test_finished_episodes_are_recorded() -> None:
    env = ShieldedEnv(gymnasium.make("CartPole-v1"), never_right)
    env.reset(seed=1)
    done, length = False, 0
    while not done:
        _, _, terminated, truncated, _ = env.step(1)
        done, length = terminated or truncated, length + 1
    [episode] = env.pop_episodes()
    assert (episode.length, episode.interventions) == (length, length)
    assert episode.episode_return == pytest.approx(length)
    assert env.pop_episodes() == []


def test_a_failing_shield_blocks_and_nothing_is_executed() -> None:
    def broken(observation: Any, action: Any) -> Any:
        raise RuntimeError("sensor down")

    inner = Recording(gymnasium.make("CartPole-v1"))
    env = ShieldedEnv(inner, broken)
    env.reset(seed=0)
    with pytest.raises(GuardBlockedError, match="shield raised RuntimeError"):
        env.step(1)
    outside = ShieldedEnv(inner, lambda observation, action: 7)
    outside.reset(seed=0)
    with pytest.raises(GuardBlockedError, match="outside the action space"):
        outside.step(0)
    assert inner.received == []
    with pytest.raises(InputError, match="shield"):
        ShieldedEnv(inner, "brake")  # type: ignore[arg-type]


def test_episode_aggregates_reach_the_audit_log(tmp_path: Path) -> None:
    env = ShieldedEnv(gymnasium.make("CartPole-v1"), never_right, penalty=-1.0)
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with GuardedLoop(model, optimizer, run_dir=tmp_path / "run", probe=torch.eye(4)) as guard:
        for seed in (0, 1):
            env.reset(seed=seed)
            done = False
            while not done:
                _, _, terminated, truncated, _ = env.step(seed % 2)
                done = terminated or truncated
        payload = record_episodes(guard, env.pop_episodes())
        assert record_episodes(guard, []) == {}
    assert payload["episodes"] == 2 and payload["interventions"] > 0
    entries = [e for e in read_log(tmp_path / "run" / "audit.jsonl") if e.type == "episodes"]
    assert [e.payload for e in entries] == [payload]
    assert verify_run(tmp_path / "run").ok

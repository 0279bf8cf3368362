"""Driving: a car follows a convoy on a Gymnasium environment, rewarded for time (speed), fuel
and safety; an action shield keeps it from closing in on the car ahead, and every policy update
goes through the gate into a signed audit log.

The environment is small and headless (no rendering, no extra packages): the gap to the car
ahead, both speeds and the fuel left are observed; the actions are brake, coast, accelerate.
The shield brakes when the car ahead is close in time (gap over speed, or gap over closing
speed) and forbids accelerating a little further out, so the unsafe action is never executed,
and the policy gets a penalty for proposing it. The policy is a small MLP trained with
REINFORCE (log-probabilities of the sampled actions, returns-to-go minus a baseline).

    python examples/driving.py [--updates 60] [--episodes 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from guarded_rl import GatePolicy, GuardedLoop, GuardPolicy

if TYPE_CHECKING:
    from guarded_rl.integrations.gymnasium import ShieldedEnv

BRAKE, COAST, ACCELERATE = 0, 1, 2
STEPS = 60


def convoy_env_class() -> type:
    """`ConvoyEnv`, defined on first use: gymnasium is an extra, and `--help` works without it."""
    import gymnasium

    class ConvoyEnv(gymnasium.Env):  # type: ignore[type-arg]
        """Follow a lead car whose speed wanders; a crash (gap <= 0) ends the episode."""

        observation_space = gymnasium.spaces.Box(0.0, 2.0, shape=(4,), dtype=np.float32)
        action_space = gymnasium.spaces.Discrete(3)

        def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict]:  # type: ignore[type-arg]
            super().reset(seed=seed)
            self.gap, self.speed, self.lead, self.fuel, self.t = 40.0, 15.0, 20.0, 1.0, 0
            return self._observe(), {}

        def _observe(self) -> np.ndarray:
            obs = [min(self.gap, 100.0) / 50.0, self.speed / 30.0, self.lead / 30.0, self.fuel]
            return np.array(obs, dtype=np.float32)

        def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:  # type: ignore[type-arg]
            accel = {BRAKE: -3.0, COAST: 0.0, ACCELERATE: 2.0}[int(action)]
            self.speed = float(np.clip(self.speed + accel, 0.0, 35.0))
            self.lead = float(np.clip(self.lead + self.np_random.normal(0.0, 1.5), 10.0, 28.0))
            self.gap += self.lead - self.speed
            self.fuel = max(0.0, self.fuel - (0.01 if int(action) == ACCELERATE else 0.002))
            self.t += 1
            crashed = self.gap <= 0.0
            reward = self.speed / 30.0  # time: the faster, the further
            reward -= 0.05 if int(action) == ACCELERATE else 0.0  # fuel
            reward -= 0.5 if self.gap < 1.0 * self.speed else 0.0  # safety: under a 1 s time gap
            reward -= 10.0 if crashed else 0.0
            return self._observe(), reward, crashed, self.t >= STEPS, {}

    return ConvoyEnv


def keep_distance(observation: Any, action: Any) -> Any:
    """The shield: brake, whatever the policy proposed, when the car ahead is under 1 s away
    or would be reached within 5 s at the current closing speed; never accelerate under 2 s
    or 10 s."""
    gap, speed, lead = (float(x) for x in observation[:3])
    gap, speed, lead = gap * 50.0, speed * 30.0, lead * 30.0
    headway = gap / max(speed, 1e-6)
    to_collision = gap / max(speed - lead, 1e-6)
    if (headway < 1.0 or to_collision < 5.0) and int(action) != BRAKE:
        return BRAKE
    if (headway < 2.0 or to_collision < 10.0) and int(action) == ACCELERATE:
        return COAST
    return action


def rollout(env: ShieldedEnv, policy: nn.Module, episodes: int, seed: int) -> tuple[list, float]:
    """Play episodes; returns (log-prob, return-to-go) pairs per step and the mean return."""
    steps, returns = [], []
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + e)
        logps, rewards, done = [], [], False
        while not done:
            dist = torch.distributions.Categorical(logits=policy(torch.as_tensor(obs)))
            action = dist.sample()
            obs, reward, terminated, truncated, _ = env.step(int(action))
            logps.append(dist.log_prob(action))
            rewards.append(float(reward))
            done = terminated or truncated
        to_go = np.cumsum(rewards[::-1])[::-1]
        steps += list(zip(logps, to_go, strict=True))
        returns.append(sum(rewards))
    return steps, float(np.mean(returns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=60)
    parser.add_argument("--episodes", type=int, default=8, help="Episodes per update.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        ConvoyEnv = convoy_env_class()
        from guarded_rl.integrations.gymnasium import ShieldedEnv, record_episodes
    except ModuleNotFoundError as exc:
        sys.exit(f"driving.py needs {exc.name}: pip install 'guarded-rl[gymnasium]'")

    torch.manual_seed(args.seed)
    env = ShieldedEnv(ConvoyEnv(), keep_distance, penalty=-1.0)
    policy = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 3))
    optimizer = torch.optim.AdamW(policy.parameters(), lr=0.01)
    probe_states = torch.tensor([[g, s, 0.66, 1.0] for g in (0.2, 0.8, 1.6) for s in (0.3, 0.9)])
    gate = GatePolicy(max_param_change=0.5, max_step_kl=0.05)  # a small policy moves fast
    guard = GuardedLoop(policy, optimizer, probe=probe_states, policy=GuardPolicy(gate=gate))

    _, before = rollout(env, policy, 16, seed=10_000)
    env.pop_episodes()
    logged = []
    for update in range(args.updates):
        steps, _ = rollout(env, policy, args.episodes, seed=args.seed * 1000 + update * 37)
        logged.append(record_episodes(guard, env.pop_episodes()))
        to_go = torch.tensor([g for _, g in steps], dtype=torch.float32)
        advantage = (to_go - to_go.mean()) / (to_go.std() + 1e-6)
        loss = -(torch.stack([lp for lp, _ in steps]) * advantage).mean()
        optimizer.zero_grad()
        loss.backward()
        guard.step(rewards=to_go.tolist())
    guard.close()
    _, after = rollout(env, policy, 16, seed=10_000)
    w = max(1, min(10, args.updates // 2))
    first, last = logged[:w], logged[-w:]
    print(f"mean return before {before:.2f} after {after:.2f}")
    print(
        f"crashes in the first / last {w} updates: {sum(p['terminated'] for p in first)} / "
        f"{sum(p['terminated'] for p in last)}; shield interventions {env.interventions} in "
        f"{env.steps} steps"
    )
    print(f"run directory: {guard.run_dir}")


if __name__ == "__main__":
    main()

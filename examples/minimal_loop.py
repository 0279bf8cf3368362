"""The minimal loop, guarded: an `nn.Module` picks one of 6 items for a context, simulated
people like items that match their context, and REINFORCE with a mean baseline learns from it.

The lines marked `# guard` are all guarded-rl adds to the plain loop (docs/integrations/torch.md
shows the diff; a test checks the loop without them runs too): every `optimizer.step()` goes
through the policy's gate and into the run's signed audit log.

    python examples/minimal_loop.py [--steps 200] [--seed 0]     (writes runs/torch-<time>/)
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from guarded_rl import GatePolicy, GuardedLoop, GuardPolicy  # guard

N_ITEMS, N_FEATURES, BATCH = 6, 4, 64


def like(contexts: torch.Tensor, items: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """People whose strongest feature is f like item f (90%), anything else rarely (10%)."""
    p = torch.where(items == contexts.argmax(1), 0.9, 0.1)
    return (torch.rand(p.shape, generator=gen) < p).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    model = nn.Linear(N_FEATURES, N_ITEMS)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
    policy = GuardPolicy(gate=GatePolicy(max_param_change=0.5))  # guard: a small model moves fast
    guard = GuardedLoop(model, optimizer, probe=torch.eye(N_FEATURES), policy=policy)  # guard

    def like_rate(n: int = 4000) -> float:
        with torch.no_grad():
            contexts = torch.rand(n, N_FEATURES, generator=gen)
            items = torch.distributions.Categorical(logits=model(contexts)).sample()
            return float(like(contexts, items, gen).mean())

    before = like_rate()
    for _ in range(args.steps):
        contexts = torch.rand(BATCH, N_FEATURES, generator=gen)
        dist = torch.distributions.Categorical(logits=model(contexts))
        items = dist.sample()
        rewards = like(contexts, items, gen)
        # policy gradient: log-probabilities of the sampled items, weighted by the advantage
        # (reward minus a baseline); the reward itself is never differentiated
        loss = -(dist.log_prob(items) * (rewards - rewards.mean())).mean()
        optimizer.zero_grad()
        loss.backward()
        guard.step(rewards=rewards.tolist())  # guard: was optimizer.step()
    guard.close()  # guard
    after = like_rate()
    print(f"like-rate before {before:.3f} after {after:.3f}")
    print(f"run directory: {guard.run_dir}")  # guard


if __name__ == "__main__":
    main()

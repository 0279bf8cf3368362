"""A toy `nn.Linear` generator learning from likes with `TorchPolicyLearner`.

The "generator" picks one of 6 items for a context vector; simulated people like items that
match their context. Each request gets K=4 samples (the RLOO group), the learner proposes an
update, and this example approves every proposal whose probe KL is small, the same rule the
default gate uses. Prints the like-rate before and after.

    python examples/linear_generator.py [--steps 150] [--seed 0]
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from guarded_rl import TorchPolicyLearner

N_ITEMS, N_FEATURES, K = 6, 4, 4


def log_prob(policy: nn.Module, contexts: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi(action | context) of a categorical policy over items."""
    logits = policy(contexts)
    return torch.log_softmax(logits, -1).gather(1, actions.unsqueeze(1)).squeeze(1)


def like(contexts: torch.Tensor, actions: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """People whose strongest feature is f like item f (90%), anything else rarely (10%)."""
    favourite = contexts.argmax(1)
    p = torch.where(actions == favourite, 0.9, 0.1)
    return (torch.rand(p.shape, generator=gen) < p).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    policy = nn.Linear(N_FEATURES, N_ITEMS)
    learner = TorchPolicyLearner(policy, log_prob, learning_rate=0.05, kl_coef=0.01)

    def like_rate(n: int = 2000) -> float:
        with torch.no_grad():
            contexts = torch.rand(n, N_FEATURES, generator=gen)
            actions = torch.distributions.Categorical(logits=policy(contexts)).sample()
            return float(like(contexts, actions, gen).mean())

    before = like_rate()
    applied = 0
    for step in range(args.steps):
        contexts = torch.rand(16, N_FEATURES, generator=gen).repeat_interleave(K, 0)
        with torch.no_grad():
            actions = torch.distributions.Categorical(logits=policy(contexts)).sample()
        rewards = like(contexts, actions, gen)
        groups = [f"{step}-{i // K}" for i in range(len(actions))]
        proposal = learner.propose(contexts, actions, rewards, groups, cycle=step)
        if proposal.stats.get("kl_ref", 0.0) < 5.0:  # a stand-in for a gate rule
            learner.apply(proposal)
            applied += 1
    after = like_rate()
    print(f"like-rate before {before:.3f} after {after:.3f} ({applied} updates applied)")


if __name__ == "__main__":
    main()

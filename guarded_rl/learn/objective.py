"""The policy-gradient objective shared by every learner.

The reward is a number a person (or the guard's penalty) gave; it is not differentiable and is
never put inside a log. The gradient flows only through the log-probabilities of the outputs
the policy actually sampled, weighted by a baseline-corrected advantage (REINFORCE with a
leave-one-out baseline, "RLOO"). A KL term to a frozen reference keeps the policy close to
where it started.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from guarded_rl.errors import InputError


def rloo_advantages(rewards: torch.Tensor, group_keys: Sequence[str]) -> torch.Tensor:
    """Reward minus the mean reward of the *other* samples of the same group.

    Groups are samples drawn for the same request; comparing within a group removes what the
    request itself contributes (an easy prompt, a person who likes everything). Every group
    needs at least two samples, otherwise there is no "other" to compare with.
    """
    if rewards.ndim != 1 or rewards.shape[0] != len(group_keys):
        raise InputError(
            "rewards and group keys differ in length",
            field="rewards",
            got=tuple(rewards.shape),
            expected=f"a 1-d tensor of {len(group_keys)} rewards",
        )
    index: dict[str, int] = {}
    ids = torch.tensor([index.setdefault(k, len(index)) for k in group_keys], dtype=torch.long)
    n_groups = len(index)
    sums = torch.zeros(n_groups, dtype=rewards.dtype).index_add_(0, ids, rewards)
    counts = torch.zeros(n_groups, dtype=rewards.dtype).index_add_(0, ids, torch.ones_like(rewards))
    if bool((counts < 2).any()):
        small = [k for k, i in index.items() if counts[i] < 2]
        raise InputError(
            "every group needs at least 2 samples for a leave-one-out baseline",
            field="group_keys",
            got=small[0],
            expected="K >= 2 samples per request",
        )
    others_mean = (sums[ids] - rewards) / (counts[ids] - 1)
    return rewards - others_mean


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) on tokens sampled from the policy.

    The "k3" estimator exp(r) - r - 1 with r = ref - policy is unbiased and never negative.
    """
    log_ratio = ref_logp - logp
    return torch.exp(log_ratio) - log_ratio - 1.0


def policy_gradient_loss(
    seq_logp: torch.Tensor,
    advantages: torch.Tensor,
    seq_kl: torch.Tensor | None = None,
    kl_coef: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """REINFORCE loss: -(advantage * log pi(sampled output)) + kl_coef * KL, averaged.

    `seq_logp` is the summed log-probability of each sampled output (with grad);
    `advantages` carry no grad; `seq_kl` is the per-output KL estimate to the reference.
    """
    advantages = advantages.detach()
    pg = -(advantages * seq_logp).mean()
    loss = pg
    stats = {"pg_loss": float(pg.detach())}
    if seq_kl is not None:
        kl = seq_kl.mean()
        loss = loss + kl_coef * kl
        stats["kl_ref"] = float(kl.detach())
    stats["loss"] = float(loss.detach())
    return loss, stats

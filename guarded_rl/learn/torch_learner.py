"""RLOO policy-gradient learner for any `torch.nn.Module` policy.

The user supplies how to compute the log-probability of the actions that were taken (a
categorical head over items, a Gaussian over continuous actions, ...); the learner supplies
the baseline, the optional KL to a frozen reference, clipping and the proposal/apply protocol.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from guarded_rl.errors import InputError, require_callable
from guarded_rl.learn.objective import kl_k3, policy_gradient_loss, rloo_advantages
from guarded_rl.learn.proposing import ProposingLearner
from guarded_rl.records import UpdateProposal

#: `log_prob_fn(module, observations, actions) -> Tensor[N]`: log pi(action_i | observation_i).
LogProbFn = Callable[[nn.Module, Any, Any], torch.Tensor]


class TorchPolicyLearner(ProposingLearner):
    """Proposes one optimizer step of REINFORCE with a leave-one-out baseline."""

    def __init__(
        self,
        policy: nn.Module,
        log_prob_fn: LogProbFn,
        *,
        learning_rate: float = 1e-2,
        kl_coef: float = 0.0,
        max_grad_norm: float = 1.0,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> None:
        require_callable(
            log_prob_fn,
            field="log_prob_fn",
            expected="a function (module, observations, actions) -> log-probabilities",
        )
        self.log_prob_fn = log_prob_fn
        self.kl_coef = kl_coef
        self.reference = copy.deepcopy(policy).eval() if kl_coef > 0 else None
        if self.reference is not None:
            for p in self.reference.parameters():
                p.requires_grad_(False)
        opt = optimizer or torch.optim.AdamW(policy.parameters(), lr=learning_rate)
        super().__init__(policy, opt, max_grad_norm)

    def _log_probs(
        self, module: nn.Module, observations: Any, actions: Any, n: int
    ) -> torch.Tensor:
        logp = self.log_prob_fn(module, observations, actions)
        if not isinstance(logp, torch.Tensor) or logp.shape != (n,):
            raise InputError(
                "log_prob_fn returned the wrong shape",
                field="log_prob_fn",
                got=tuple(logp.shape) if isinstance(logp, torch.Tensor) else type(logp).__name__,
                expected=f"a tensor of shape ({n},): one log-probability per action",
            )
        return logp

    def propose(
        self,
        observations: Any,
        actions: Any,
        rewards: Sequence[float] | torch.Tensor,
        group_keys: Sequence[str],
        *,
        cycle: int = 0,
    ) -> UpdateProposal:
        """`group_keys[i]` names the request action i answered; each needs >= 2 actions."""
        reward_t = torch.as_tensor(rewards, dtype=torch.float32).detach()
        advantages = rloo_advantages(reward_t, group_keys)
        n = len(group_keys)

        def loss_fn() -> tuple[torch.Tensor, dict[str, float]]:
            logp = self._log_probs(self.module, observations, actions, n)
            seq_kl = None
            if self.reference is not None:
                with torch.no_grad():
                    ref_logp = self._log_probs(self.reference, observations, actions, n)
                seq_kl = kl_k3(logp, ref_logp)
            loss, stats = policy_gradient_loss(logp, advantages, seq_kl, self.kl_coef)
            stats["mean_reward"] = float(reward_t.mean())
            stats["samples"] = float(n)
            return loss, stats

        return self._propose(cycle, loss_fn, advantages)

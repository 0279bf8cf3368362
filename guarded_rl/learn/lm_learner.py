"""RLOO policy-gradient learner for Hugging Face causal language models."""

from __future__ import annotations

import copy

import torch
from torch import nn

from guarded_rl.learn.causal_lm import completion_logprobs
from guarded_rl.learn.objective import kl_k3, policy_gradient_loss, rloo_advantages
from guarded_rl.learn.proposing import ProposingLearner
from guarded_rl.policy import LearnerPolicy
from guarded_rl.records import Batch, UpdateProposal


class CausalLMLearner(ProposingLearner):
    """Proposes one AdamW step per batch of rated samples.

    Loss per batch: mean over samples of -A_i * log pi(y_i | x_i) + kl_coef * KL_i, where
    A_i is the reward minus the leave-one-out mean of the other samples for the same request,
    log pi sums the per-token log-probabilities of the sampled tokens, and KL_i is the k3
    estimate of KL(pi || reference) summed over those tokens. The reference is a frozen copy
    of the model as it was when the learner was made.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: object,
        settings: LearnerPolicy,
        *,
        reference: nn.Module | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.settings = settings
        self.reference = reference if reference is not None else copy.deepcopy(model)
        self.reference.eval()
        for p in self.reference.parameters():
            p.requires_grad_(False)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=settings.learning_rate, weight_decay=0.0
        )
        super().__init__(model, optimizer, settings.max_grad_norm)

    def propose(self, batch: Batch) -> UpdateProposal:
        prompts = [s.prompt_ids for s in batch.samples]
        completions = [s.completion_ids for s in batch.samples]
        rewards = torch.tensor(batch.rewards, dtype=torch.float32)
        advantages = rloo_advantages(rewards, batch.group_keys)
        pad = self.tokenizer.pad_token_id  # type: ignore[attr-defined]  # a Hugging Face tokenizer, typed object (no stubs)

        def loss_fn() -> tuple[torch.Tensor, dict[str, float]]:
            logp, mask = completion_logprobs(self.module, prompts, completions, pad)
            with torch.no_grad():
                ref_logp, _ = completion_logprobs(self.reference, prompts, completions, pad)
            seq_kl = (kl_k3(logp, ref_logp) * mask).sum(1)
            loss, stats = policy_gradient_loss(
                logp.sum(1), advantages, seq_kl, self.settings.kl_coef
            )
            stats["mean_reward"] = float(rewards.mean())
            stats["samples"] = float(len(batch))
            return loss, stats

        return self._propose(batch.cycle, loss_fn, advantages)

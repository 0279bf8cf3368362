"""Guard rails for the Hugging Face `Trainer` (and trainers built on it, such as TRL's).

    trainer = Trainer(model=model, args=args, train_dataset=data,
                      callbacks=[GuardCallback(probe=probe_inputs)])

    reward = guarded_reward(my_reward, store=feedback_store)       # TRL: GRPO, RLOO
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=data,
                          callbacks=[GuardCallback(probe=probe_inputs, reward=reward)])

`GuardCallback` snapshots the weights and optimizer state at `on_pre_optimizer_step` (after the
Trainer clipped the gradients), and at `on_optimizer_step` lets the policy's gate decide on
what the step made. A kept step stays; a rejected or held step is undone by restoring the
model and the optimizer state exactly (the Trainer has no flag to skip a step, and zeroing the
gradients would not undo AdamW's momentum or weight decay). Every optimizer step becomes an
entry of a signed audit log in the run directory, as with `GuardedLoop`. The learning-rate
scheduler still advances on an undone step.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from guarded_rl.errors import InputError
from guarded_rl.integrations.rewards import GuardedReward
from guarded_rl.integrations.torch import GuardedLoop, Probe, StepCheck
from guarded_rl.policy import GuardPolicy
from guarded_rl.records import Decision


class GuardCallback(TrainerCallback):
    """Gates every optimizer step of a `transformers.Trainer`."""

    def __init__(
        self,
        *,
        probe: Probe | torch.Tensor,
        run_dir: str | Path | None = None,
        policy: GuardPolicy | str | Path | None = None,
        checks: Sequence[StepCheck] = (),
        blocking: Collection[str] = (),
        key_file: str | Path | None = None,
        operator: str | None = None,
        operator_key: str | Path | None = None,
        reward: GuardedReward | None = None,
    ) -> None:
        """`probe`: fixed inputs (token ids the model is called on, or a function model ->
        logits) on which the drift check compares the model before and after each step.
        `reward`: the `guarded_reward(...)` given to a TRL trainer; each step's entry then
        records the rewards and the screen's counts (blocked, redacted, no consent) since the
        step before."""
        self._settings: dict[str, Any] = {
            "probe": _token_probe(probe) if isinstance(probe, torch.Tensor) else probe,
            "run_dir": run_dir,
            "policy": policy,
            "checks": checks,
            "blocking": blocking,
            "key_file": key_file,
            "operator": operator,
            "operator_key": operator_key,
        }
        self.reward = reward
        self.guard: GuardedLoop | None = None
        self.decisions: list[Decision] = []

    def _guard(self, model: Any, optimizer: Any) -> GuardedLoop:
        if self.guard is None:
            self.guard = GuardedLoop(model, optimizer, **self._settings)
        return self.guard

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._guard(kwargs["model"], kwargs["optimizer"]).before_optimizer_step()

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.guard is None:
            return
        if self.reward is None:
            self.decisions.append(self.guard.after_optimizer_step())
            return
        rewards, screened = self.reward.take()
        self.decisions.append(self.guard.after_optimizer_step(rewards=rewards, screened=screened))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.guard is not None:
            self.guard.close()


def text_probe(tokenizer: Any, texts: Sequence[str]) -> Probe:
    """Next-token logits of a causal LM inside fixed texts, `[positions, vocab]`: the same
    positions the run's own drift check (`learn.causal_lm.probe_logprobs`) compares, for
    `GuardCallback(probe=text_probe(tokenizer, policy.gate.probe_texts))`."""
    from guarded_rl.learn.causal_lm import encode_prompt, pad_rows

    if not texts:
        raise InputError("no probe texts", field="probe", expected="at least one text")
    eos = tokenizer.eos_token_id
    encoded = [[*encode_prompt(tokenizer, t), eos] for t in texts]
    input_ids, attention = pad_rows(encoded, tokenizer.pad_token_id)
    valid = attention.bool()
    valid[torch.arange(len(encoded)), attention.sum(1) - 1] = False  # predicts past the text

    def probe(model: torch.nn.Module) -> torch.Tensor:
        return model(input_ids=input_ids, attention_mask=attention).logits[valid]

    return probe


def _token_probe(input_ids: torch.Tensor) -> Probe:
    """Next-token logits of a causal LM on fixed token ids (every position)."""

    def probe(model: torch.nn.Module) -> torch.Tensor:
        logits = model(input_ids=input_ids).logits
        return logits.reshape(-1, logits.shape[-1])

    return probe

__all__ = [
    "GuardCallback",
    "text_probe",
]

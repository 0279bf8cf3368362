"""Guard rails for the Hugging Face `Trainer` (and trainers built on it, such as TRL's).

    trainer = Trainer(model=model, args=args, train_dataset=data,
                      callbacks=[GuardCallback(probe=probe_inputs)])

`GuardCallback` snapshots the weights and optimizer state at `on_pre_optimizer_step` (after the
Trainer clipped the gradients), and at `on_optimizer_step` lets the policy's gate decide on
what the step made. A kept step stays; a rejected or held step is undone by restoring the
model and the optimizer state exactly (the Trainer has no flag to skip a step, and zeroing the
gradients would not undo AdamW's momentum or weight decay). Every optimizer step becomes an
entry of a signed audit log in the run directory, as with `GuardedLoop`. The learning-rate
scheduler still advances on an undone step.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from guarded_rl.integrations.torch import GuardedLoop, Probe, StepCheck
from guarded_rl.policy import GuardPolicy
from guarded_rl.records import Decision


class GuardCallback(TrainerCallback):  # type: ignore[misc]
    """Gates every optimizer step of a `transformers.Trainer`."""

    def __init__(
        self,
        *,
        probe: Probe | torch.Tensor,
        run_dir: str | Path | None = None,
        policy: GuardPolicy | str | Path | None = None,
        checks: Sequence[StepCheck] = (),
        key_file: str | Path | None = None,
        operator: str | None = None,
    ) -> None:
        """`probe`: fixed inputs (token ids the model is called on, or a function model ->
        logits) on which the drift check compares the model before and after each step."""
        self._settings: dict[str, Any] = {
            "probe": _token_probe(probe) if isinstance(probe, torch.Tensor) else probe,
            "run_dir": run_dir,
            "policy": policy,
            "checks": checks,
            "key_file": key_file,
            "operator": operator,
        }
        self.guard: GuardedLoop | None = None
        self.decisions: list[Decision] = []

    def _guard(self, model: Any, optimizer: Any) -> GuardedLoop:
        if self.guard is None:
            self.guard = GuardedLoop(model, optimizer, **self._settings)
        return self.guard

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._guard(kwargs["model"], kwargs["optimizer"]).before_optimizer_step()

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.guard is not None:
            self.decisions.append(self.guard.after_optimizer_step())

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.guard is not None:
            self.guard.close()


def _token_probe(input_ids: torch.Tensor) -> Probe:
    """Next-token logits of a causal LM on fixed token ids (every position)."""

    def probe(model: torch.nn.Module) -> torch.Tensor:
        logits = model(input_ids=input_ids).logits
        return logits.reshape(-1, logits.shape[-1])  # type: ignore[no-any-return]

    return probe

"""A callback that watches each optimizer step of a real trainer from outside the guard."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from transformers import TrainerCallback

from guarded_rl.weights import state_of


class StepWatcher(TrainerCallback):  # type: ignore[misc]
    """Placed after GuardCallback: compares each step's outcome with the state before it."""

    def __init__(self) -> None:
        self.unchanged: list[bool] = []
        self.zero_gradient: list[bool] = []

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        grads = [p.grad for p in kw["model"].parameters() if p.grad is not None]
        self.zero_gradient.append(all(not g.any() for g in grads))
        self.before = (
            state_of(kw["model"], clone=True),
            copy.deepcopy(kw["optimizer"].state_dict()),
        )

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        weights, opt = self.before
        now = state_of(kw["model"])
        same_w = all(torch.equal(now[k], weights[k]) for k in weights)
        same_opt = _same_optimizer(kw["optimizer"].state_dict(), opt)
        self.unchanged.append(same_w and same_opt)


def _same_optimizer(a: dict, b: dict) -> bool:  # type: ignore[type-arg]
    if a["state"].keys() != b["state"].keys():
        return False
    return all(
        torch.equal(torch.as_tensor(a["state"][i][k]), torch.as_tensor(b["state"][i][k]))
        for i in a["state"]
        for k in a["state"][i]
    )


@pytest.fixture
def step_watcher() -> StepWatcher:
    """Place it after GuardCallback in `callbacks`: `.unchanged[i]` says whether step i left
    the weights and the optimizer state exactly as they were before it, `.zero_gradient[i]`
    whether its gradient was zero."""
    return StepWatcher()

"""Turning one optimizer step into a proposal that changes nothing until it is applied.

The step runs on the live module (no second copy of the model is needed), then the module and
the optimizer are put back exactly as they were. The candidate weights and optimizer state
travel in the `UpdateProposal`; `apply` installs them only after the gate approved.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from guarded_rl.errors import AuditError, GuardBlockedError
from guarded_rl.records import UpdateProposal
from guarded_rl.weights import State, load_state, state_of, state_sha256

LossFn = Callable[[], tuple[torch.Tensor, dict[str, float]]]


class ProposingLearner:
    """Base of the learners: a module, its optimizer, and propose/apply."""

    def __init__(
        self, module: nn.Module, optimizer: torch.optim.Optimizer, max_grad_norm: float
    ) -> None:
        self.module = module
        self.optimizer = optimizer
        self.max_grad_norm = max_grad_norm
        self._live_sha256 = state_sha256(state_of(module))

    @property
    def live_sha256(self) -> str:
        """Commitment to the weights being served now."""
        return self._live_sha256

    def checkpoint_state(self) -> tuple[State, dict[str, Any]]:
        """The live weights and optimizer state: what a checkpoint must hold to resume."""
        return state_of(self.module), self.optimizer.state_dict()

    def restore(self, model_state: State, optimizer_state: dict[str, Any]) -> None:
        """Make a stored state live (rollback, resume, replay)."""
        load_state(self.module, model_state)
        self.optimizer.load_state_dict(clone_tree(optimizer_state))
        self._live_sha256 = state_sha256(state_of(self.module))

    def _capture(self) -> tuple[State, dict[str, Any]]:
        """Copies of the module's weights and the optimizer state, sharing nothing with them."""
        return state_of(self.module, clone=True), clone_tree(self.optimizer.state_dict())

    def _put_back(self, state: State, optimizer_state: dict[str, Any]) -> None:
        """Restore what `_capture` copied, exactly (the live commitment is unchanged)."""
        load_state(self.module, state)
        self.optimizer.load_state_dict(optimizer_state)

    def _propose(
        self, cycle: int, loss_fn: LossFn, advantages: torch.Tensor | None = None
    ) -> UpdateProposal:
        base_state, base_opt = self._capture()
        try:
            self.optimizer.zero_grad(set_to_none=True)
            loss, stats = loss_fn()
            if not torch.isfinite(loss):
                raise GuardBlockedError(
                    "the update's loss is not finite; nothing was proposed",
                    field="loss",
                    got=float(loss.detach()),
                )
            loss.backward()
            params = [p for p in self.module.parameters() if p.requires_grad]
            grad_norm = torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
            self.optimizer.step()
            candidate, candidate_opt = self._capture()
        finally:
            self.optimizer.zero_grad(set_to_none=True)
            self._put_back(base_state, base_opt)
        stats = {
            **stats,
            "grad_norm": float(grad_norm),
            "param_change_rel": relative_change(base_state, candidate),
        }
        advantage_list = tuple(float(a) for a in advantages) if advantages is not None else ()
        return UpdateProposal(
            cycle=cycle,
            base_sha256=self._live_sha256,
            candidate_sha256=state_sha256(candidate),
            candidate_state=candidate,
            optimizer_state=candidate_opt,
            stats=stats,
            advantages=advantage_list,
            layer_change=layer_change(base_state, candidate),
        )

    def apply(self, proposal: UpdateProposal) -> None:
        """Make an approved proposal live. Refuses a proposal made from other weights."""
        if proposal.base_sha256 != self._live_sha256:
            raise AuditError(
                "proposal was made from other weights than the live ones",
                field="base_sha256",
                got=proposal.base_sha256[:12],
                expected=f"{self._live_sha256[:12]} (the live weights)",
            )
        load_state(self.module, proposal.candidate_state)
        # a copy: the optimizer mutates its state in place, the proposal is a record
        self.optimizer.load_state_dict(clone_tree(proposal.optimizer_state))
        self._live_sha256 = proposal.candidate_sha256


_LAYER = re.compile(r"^(.*?\.\d+)\.|^(.*)\.[^.]+$")


def layer_of(name: str) -> str:
    """`transformer.h.3.attn.c_attn.weight` → `transformer.h.3`; `wte.weight` → `wte`."""
    match = _LAYER.match(name)
    if match is None:
        return name
    return match.group(1) or match.group(2)


def layer_change(before: State, after: State) -> dict[str, float]:
    """L2 norm of the parameter change per layer (what an explanation shows)."""
    sums: dict[str, float] = {}
    for name, tensor in after.items():
        delta = (tensor.float() - before[name].float()).pow(2).sum().item()
        sums[layer_of(name)] = sums.get(layer_of(name), 0.0) + delta
    return {layer: round(total**0.5, 8) for layer, total in sorted(sums.items())}


def relative_change(before: State, after: State) -> float:
    """||after - before|| / ||before|| over all floating-point tensors: the step's size
    relative to the weights (what the gate's `max_param_change` bounds). From all-zero
    weights any change is unbounded (inf), no change is 0."""
    step = 0.0
    norm = 0.0
    for name, tensor in after.items():
        if not tensor.is_floating_point():
            continue
        base = before[name].double()
        step += (tensor.double() - base).pow(2).sum().item()
        norm += base.pow(2).sum().item()
    if norm == 0.0:
        return 0.0 if step == 0.0 else float("inf")
    return (step**0.5) / norm**0.5


def clone_tree(value: Any) -> Any:
    """A copy of an optimizer state dict whose tensors share nothing with the original.

    The optimizer updates its state tensors in place; a proposal is a record and must not
    change after it was made. (Much cheaper than `copy.deepcopy` for the same result.)
    """
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: clone_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone_tree(v) for v in value]
    if isinstance(value, tuple):
        return tuple(clone_tree(v) for v in value)
    return value

"""Weights as plain name → tensor maps, and the SHA-256 commitment the audit log records.

Tied parameters (a language model's input and output embedding) appear once, under the name
`named_parameters` gives them, so the same weights always hash to the same commitment.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from guarded_rl.errors import AuditError

if TYPE_CHECKING:  # commands that only hash or verify stored files never load torch
    import torch
    from torch import nn

State = dict[str, "torch.Tensor"]


def state_of(module: nn.Module, *, clone: bool = False) -> State:
    """Parameters and persistent buffers of `module`, tied tensors once, detached."""
    state: State = {}
    for name, tensor in module.named_parameters():
        state[name] = tensor.detach().clone() if clone else tensor.detach()
    non_persistent = _non_persistent_buffers(module)
    for name, buf in module.named_buffers():
        if name not in non_persistent:
            state[name] = buf.detach().clone() if clone else buf.detach()
    return state


def load_state(module: nn.Module, state: State) -> None:
    """Copy `state` into `module` in place; every name must match exactly."""
    target = state_of(module)
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    if missing or unexpected:
        raise AuditError(
            "weights do not fit this model",
            field="state",
            got=(missing or unexpected)[0],
            expected="the parameter names of the model",
        )
    import torch

    with torch.no_grad():
        for name, tensor in target.items():
            tensor.copy_(state[name])


def tensor_sha256(tensor: torch.Tensor) -> str:
    """Content hash of one tensor: SHA-256 over dtype, shape and raw bytes."""
    import torch

    tensor = tensor.detach().cpu()
    digest = hashlib.sha256()
    digest.update(str(tensor.dtype).encode())
    digest.update(str(tuple(tensor.shape)).encode())
    flat = tensor.contiguous().reshape(-1)
    digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()


def state_sha256(state: State) -> str:
    """Commitment to a state: SHA-256 of the sorted `name:tensor_sha256` lines.

    Built from per-tensor hashes so a checkpoint manifest (which lists them) can be checked
    against the commitment without reading any tensor twice.
    """
    return state_sha256_from_tensor_hashes({n: tensor_sha256(t) for n, t in state.items()})


def state_sha256_from_tensor_hashes(tensor_hashes: dict[str, str]) -> str:
    lines = "".join(f"{name}:{tensor_hashes[name]}\n" for name in sorted(tensor_hashes))
    return hashlib.sha256(lines.encode()).hexdigest()


def module_sha256(module: nn.Module) -> str:
    return state_sha256(state_of(module))


def _non_persistent_buffers(module: nn.Module) -> set[str]:
    names: set[str] = set()
    for prefix, sub in module.named_modules():
        for buf_name in getattr(sub, "_non_persistent_buffers_set", ()):
            names.add(f"{prefix}.{buf_name}" if prefix else buf_name)
    return names

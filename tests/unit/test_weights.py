"""Weights as name → tensor maps and their SHA-256 commitment."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from guarded_rl.errors import AuditError
from guarded_rl.weights import load_state, module_sha256, state_of, state_sha256


class WithBuffers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.register_buffer("kept", torch.arange(3.0))
        self.register_buffer("scratch", torch.zeros(2), persistent=False)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def test_hash_is_hex_sha256_and_stable_across_clones() -> None:
    net = _net()
    digest = state_sha256(state_of(net))
    assert len(digest) == 64
    int(digest, 16)
    assert state_sha256(state_of(net, clone=True)) == digest
    assert state_sha256({k: v.clone() for k, v in state_of(net).items()}) == digest
    assert module_sha256(copy.deepcopy(net)) == digest
    # insertion order of the map does not matter
    assert state_sha256(dict(reversed(list(state_of(net).items())))) == digest


def test_hash_changes_when_one_value_changes() -> None:
    net = _net()
    before = module_sha256(net)
    with torch.no_grad():
        net[0].weight[1, 2] += 1e-6
    assert module_sha256(net) != before


def test_hash_covers_names_dtypes_and_shapes() -> None:
    base = {"a": torch.zeros(4)}
    digest = state_sha256(base)
    assert state_sha256({"b": torch.zeros(4)}) != digest
    assert state_sha256({"a": torch.zeros(4, dtype=torch.float64)}) != digest
    assert state_sha256({"a": torch.zeros(2, 2)}) != digest
    assert state_sha256({"a": torch.zeros(4), "c": torch.zeros(0)}) != digest
    assert state_sha256({}) != digest


def test_hash_of_non_contiguous_tensor_equals_contiguous_copy() -> None:
    t = torch.arange(6.0).reshape(2, 3).t()
    assert not t.is_contiguous()
    assert state_sha256({"x": t}) == state_sha256({"x": t.contiguous()})


def test_state_of_clone_semantics() -> None:
    net = _net()
    shared = state_of(net)
    cloned = state_of(net, clone=True)
    with torch.no_grad():
        net[0].bias.fill_(7.0)
    assert torch.equal(shared["0.bias"], torch.full((3,), 7.0))
    assert not torch.equal(cloned["0.bias"], torch.full((3,), 7.0))
    assert not any(t.requires_grad for t in shared.values())


def test_persistent_buffers_only() -> None:
    state = state_of(WithBuffers())
    assert set(state) == {"lin.weight", "lin.bias", "kept"}


def test_tied_gpt2_weights_appear_once(tiny_lm: tuple[nn.Module, object]) -> None:
    model, _ = tiny_lm
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    state = state_of(model)
    assert "transformer.wte.weight" in state
    assert "lm_head.weight" not in state
    assert module_sha256(copy.deepcopy(model)) == module_sha256(model)


def test_load_state_copies_in_place() -> None:
    src, dst = _net(), _net()
    with torch.no_grad():
        for p in dst.parameters():
            p.add_(1.0)
    weight = dst[0].weight
    assert module_sha256(src) != module_sha256(dst)
    load_state(dst, state_of(src, clone=True))
    assert module_sha256(dst) == module_sha256(src)
    assert dst[0].weight is weight  # the same Parameter object, new values


def test_load_state_into_tied_model_updates_both_ends(fresh_lm: tuple[nn.Module, object]) -> None:
    model, _ = fresh_lm
    state = state_of(model, clone=True)
    state["transformer.wte.weight"] = state["transformer.wte.weight"] + 1.0
    load_state(model, state)
    assert torch.equal(model.lm_head.weight, state["transformer.wte.weight"])


@pytest.mark.parametrize("change", ["missing", "unexpected", "renamed"])
def test_load_state_with_wrong_names_raises(change: str) -> None:
    net = _net()
    before = module_sha256(net)
    state = state_of(net, clone=True)
    if change == "missing":
        del state["2.bias"]
        bad = "2.bias"
    elif change == "unexpected":
        state["extra"] = torch.zeros(1)
        bad = "extra"
    else:
        state["0.weights"] = state.pop("0.weight")
        bad = "0.weight"
    with torch.no_grad():
        for t in state.values():
            t.add_(1.0)
    with pytest.raises(AuditError) as info:
        load_state(net, state)
    assert repr(bad) in info.value.one_line()
    assert module_sha256(net) == before  # nothing was copied

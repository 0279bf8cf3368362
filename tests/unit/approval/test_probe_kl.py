"""ProbeKLCheck: KL of candidate weights against the live model, without touching it."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from guarded_rl.approval.probe_kl import ProbeKLCheck
from guarded_rl.learn.causal_lm import probe_kl
from guarded_rl.records import Batch, UpdateProposal
from guarded_rl.weights import load_state, module_sha256, state_of, state_sha256

TEXTS = ["sports: Team wins", "health: New clinic"]
EMPTY_BATCH = Batch(0, (), (), (), ())


def _proposal(live: nn.Module, state: dict[str, torch.Tensor]) -> UpdateProposal:
    return UpdateProposal(0, module_sha256(live), state_sha256(state), state, {})


def _shifted_state(model: nn.Module, scale: float, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        k: v + scale * torch.randn(v.shape, generator=gen)
        for k, v in state_of(model, clone=True).items()
    }


def test_unchanged_candidate_has_zero_kl(tiny_lm: tuple[nn.Module, object]) -> None:
    model, tok = tiny_lm
    check = ProbeKLCheck(model, tok, TEXTS)
    result = check(_proposal(model, state_of(model, clone=True)), EMPTY_BATCH)
    assert result.name == "probe_kl" == check.name
    assert result.passed
    assert result.metrics == {"kl_step": 0.0}


def test_kl_of_candidate_matches_direct_measurement(tiny_lm: tuple[nn.Module, object]) -> None:
    model, tok = tiny_lm
    live_sha = module_sha256(model)
    candidate = _shifted_state(model, 0.05)
    check = ProbeKLCheck(model, tok, TEXTS, reference=model)
    result = check(_proposal(model, candidate), EMPTY_BATCH)

    direct_model = copy.deepcopy(model)
    load_state(direct_model, candidate)
    expected = probe_kl(direct_model, model, tok, TEXTS)
    assert expected > 0
    assert math.isclose(result.metrics["kl_step"], round(expected, 6))
    assert math.isclose(result.metrics["kl_ref"], round(expected, 6))  # reference == live here
    assert module_sha256(model) == live_sha  # the live model was never touched


def test_bigger_step_bigger_kl_and_separate_reference(
    fresh_lm: tuple[nn.Module, object], tiny_lm: tuple[nn.Module, object]
) -> None:
    live, tok = fresh_lm
    reference = tiny_lm[0]
    load_state(live, _shifted_state(reference, 0.05))  # live has moved away from the reference
    check = ProbeKLCheck(live, tok, TEXTS, reference=reference)
    same = check(_proposal(live, state_of(live, clone=True)), EMPTY_BATCH)
    assert same.metrics["kl_step"] == 0.0
    assert same.metrics["kl_ref"] > 0.0
    small = check(_proposal(live, _shifted_state(live, 0.01)), EMPTY_BATCH).metrics["kl_step"]
    large = check(_proposal(live, _shifted_state(live, 0.2)), EMPTY_BATCH).metrics["kl_step"]
    assert 0.0 < small < large


def test_follows_the_live_model_after_an_update(fresh_lm: tuple[nn.Module, object]) -> None:
    live, tok = fresh_lm
    check = ProbeKLCheck(live, tok, TEXTS)
    moved = _shifted_state(live, 0.1, seed=3)
    before = check(_proposal(live, moved), EMPTY_BATCH).metrics["kl_step"]
    assert before > 0.0
    load_state(live, moved)  # the update went live: proposals now start from `moved`
    after = check(_proposal(live, state_of(live, clone=True)), EMPTY_BATCH).metrics["kl_step"]
    assert after == 0.0


def test_reference_is_fixed_when_the_check_is_made(fresh_lm: tuple[nn.Module, object]) -> None:
    live, tok = fresh_lm
    reference = copy.deepcopy(live)
    check = ProbeKLCheck(live, tok, TEXTS, reference=reference)
    candidate = _shifted_state(live, 0.1, seed=4)
    first = check(_proposal(live, candidate), EMPTY_BATCH).metrics["kl_ref"]
    direct = copy.deepcopy(live)
    load_state(direct, candidate)
    assert math.isclose(first, round(probe_kl(direct, reference, tok, TEXTS), 6))


def test_no_reference_no_kl_ref(tiny_lm: tuple[nn.Module, object]) -> None:
    model, tok = tiny_lm
    proposal = _proposal(model, _shifted_state(model, 0.05))
    result = ProbeKLCheck(model, tok, TEXTS)(proposal, EMPTY_BATCH)
    assert set(result.metrics) == {"kl_step"}
    assert isinstance(result.metrics["kl_step"], float)

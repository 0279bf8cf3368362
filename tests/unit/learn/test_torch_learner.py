"""ProposingLearner through TorchPolicyLearner: propose changes nothing, apply changes it all."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
from torch import nn

from guarded_rl.errors import AuditError, GuardBlockedError, InputError
from guarded_rl.learn.torch_learner import TorchPolicyLearner
from guarded_rl.weights import module_sha256, state_of

N_ITEMS = 4


def categorical_logp(module: nn.Module, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(module(obs), -1).gather(1, actions.unsqueeze(1)).squeeze(1)


def gaussian_logp(module: nn.Module, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    mean = module(obs).squeeze(1)
    return torch.distributions.Normal(mean, 0.5).log_prob(actions)


def _zero_linear(n_out: int) -> nn.Linear:
    policy = nn.Linear(1, n_out)
    nn.init.zeros_(policy.weight)
    nn.init.zeros_(policy.bias)
    return policy


def _probs(policy: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(policy(torch.ones(1, 1)), -1)[0]


def _batch() -> tuple[torch.Tensor, torch.Tensor, list[float], list[str]]:
    obs = torch.ones(4, 1)
    actions = torch.tensor([2, 0, 2, 1])
    return obs, actions, [1.0, 0.0, 1.0, 0.0], ["a", "a", "b", "b"]


def _opt_state(learner: TorchPolicyLearner) -> dict[str, Any]:
    return copy.deepcopy(learner.optimizer.state_dict())


def _same_opt_state(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a["param_groups"] != b["param_groups"] or set(a["state"]) != set(b["state"]):
        return False
    for pid, slots in a["state"].items():
        other = b["state"][pid]
        if set(slots) != set(other):
            return False
        for key, value in slots.items():
            if not torch.equal(torch.as_tensor(value), torch.as_tensor(other[key])):
                return False
    return True


def _learner(lr: float = 0.05, **kwargs: Any) -> TorchPolicyLearner:
    torch.manual_seed(0)
    return TorchPolicyLearner(nn.Linear(1, N_ITEMS), categorical_logp, learning_rate=lr, **kwargs)


def test_live_sha_starts_at_module_hash() -> None:
    learner = _learner()
    assert learner.live_sha256 == module_sha256(learner.module)


@pytest.mark.parametrize("applied_before", [0, 2])
def test_propose_changes_neither_weights_nor_optimizer(applied_before: int) -> None:
    learner = _learner()
    for _ in range(applied_before):  # give the optimizer some state first
        learner.apply(learner.propose(*_batch()))
    weights = state_of(learner.module, clone=True)
    opt = _opt_state(learner)
    live = learner.live_sha256

    proposal = learner.propose(*_batch(), cycle=7)

    assert learner.live_sha256 == live
    assert module_sha256(learner.module) == live
    for name, tensor in state_of(learner.module).items():
        assert torch.equal(tensor, weights[name])
    assert _same_opt_state(_opt_state(learner), opt)
    assert all(p.grad is None for p in learner.module.parameters())
    assert proposal.cycle == 7
    assert proposal.base_sha256 == live
    assert proposal.candidate_sha256 != live


def test_proposals_from_the_same_state_are_identical() -> None:
    learner = _learner()
    first = learner.propose(*_batch())
    second = learner.propose(*_batch())
    assert first.candidate_sha256 == second.candidate_sha256
    assert first.stats == second.stats


def test_apply_installs_candidate_weights_and_optimizer_state() -> None:
    learner = _learner()
    proposal = learner.propose(*_batch())
    learner.apply(proposal)
    assert learner.live_sha256 == proposal.candidate_sha256
    assert module_sha256(learner.module) == proposal.candidate_sha256
    for name, tensor in state_of(learner.module).items():
        assert torch.equal(tensor, proposal.candidate_state[name])
    assert _same_opt_state(_opt_state(learner), proposal.optimizer_state)
    steps = {float(s["step"]) for s in learner.optimizer.state_dict()["state"].values()}
    assert steps == {1.0}


def test_applied_proposal_is_not_changed_by_later_steps() -> None:
    learner = _learner()
    first = learner.propose(*_batch())
    learner.apply(first)
    recorded = copy.deepcopy(first.optimizer_state)
    candidate = {k: v.clone() for k, v in first.candidate_state.items()}
    learner.apply(learner.propose(*_batch()))
    learner.propose(*_batch())
    assert _same_opt_state(first.optimizer_state, recorded)
    assert all(torch.equal(first.candidate_state[k], v) for k, v in candidate.items())


def test_apply_twice_raises_and_changes_nothing() -> None:
    learner = _learner()
    proposal = learner.propose(*_batch())
    learner.apply(proposal)
    live = learner.live_sha256
    with pytest.raises(AuditError) as info:
        learner.apply(proposal)
    assert info.value.field == "base_sha256"
    assert learner.live_sha256 == live == module_sha256(learner.module)


def test_stale_proposal_raises() -> None:
    learner = _learner()
    first = learner.propose(*_batch())
    other_actions = torch.tensor([0, 1, 3, 3])
    second = learner.propose(torch.ones(4, 1), other_actions, [1, 0, 0, 1], list("aabb"))
    learner.apply(first)
    with pytest.raises(AuditError, match="other weights"):
        learner.apply(second)
    assert learner.live_sha256 == first.candidate_sha256


def test_exact_sgd_step() -> None:
    policy = _zero_linear(N_ITEMS)
    sgd = torch.optim.SGD(policy.parameters(), lr=0.1)
    learner = TorchPolicyLearner(policy, categorical_logp, optimizer=sgd, max_grad_norm=10.0)
    # one request, actions 2 (reward 1) and 0 (reward 0): advantages +1, -1
    proposal = learner.propose(torch.ones(2, 1), torch.tensor([2, 0]), [1.0, 0.0], ["r", "r"])
    # d loss / d logits = -(1/2) * ((e2 - p) - (e0 - p)) = [0.5, 0, -0.5, 0]
    expected = torch.tensor([-0.05, 0.0, 0.05, 0.0])
    assert torch.allclose(proposal.candidate_state["bias"], expected, atol=1e-7)
    assert torch.allclose(proposal.candidate_state["weight"][:, 0], expected, atol=1e-7)
    assert math.isclose(proposal.stats["grad_norm"], 1.0, rel_tol=1e-5)
    assert proposal.stats["mean_reward"] == 0.5
    assert proposal.stats["samples"] == 2.0
    assert math.isclose(proposal.stats["pg_loss"], 0.0, abs_tol=1e-7)  # both logp are log 1/4


def test_gradient_clipping_bounds_the_step() -> None:
    policy = _zero_linear(N_ITEMS)
    sgd = torch.optim.SGD(policy.parameters(), lr=1.0)
    learner = TorchPolicyLearner(policy, categorical_logp, optimizer=sgd, max_grad_norm=0.01)
    proposal = learner.propose(torch.ones(2, 1), torch.tensor([2, 0]), [1.0, 0.0], ["r", "r"])
    step = torch.cat([t.reshape(-1) for t in proposal.candidate_state.values()])
    assert float(step.norm()) <= 0.01 + 1e-6
    assert proposal.stats["grad_norm"] > 0.5  # the reported norm is before clipping


def test_bandit_learns_the_rewarded_item() -> None:
    policy = _zero_linear(N_ITEMS)
    learner = TorchPolicyLearner(policy, categorical_logp, learning_rate=0.05)
    gen = torch.Generator().manual_seed(0)
    obs = torch.ones(8, 1)
    assert math.isclose(float(_probs(policy)[2]), 0.25, rel_tol=1e-6)
    for step in range(50):
        with torch.no_grad():
            probs = torch.softmax(policy(obs), -1)
        actions = torch.multinomial(probs, 1, generator=gen).squeeze(1)
        rewards = (actions == 2).float()
        learner.apply(learner.propose(obs, actions, rewards, ["a"] * 4 + ["b"] * 4, cycle=step))
    assert float(_probs(policy)[2]) > 0.6


def test_gaussian_policy_moves_toward_rewarded_region() -> None:
    policy = _zero_linear(1)
    learner = TorchPolicyLearner(policy, gaussian_logp, learning_rate=0.05)
    gen = torch.Generator().manual_seed(1)
    obs = torch.ones(8, 1)
    for _ in range(60):
        with torch.no_grad():
            mean = policy(obs).squeeze(1)
        actions = mean + 0.5 * torch.randn(8, generator=gen)
        rewards = -((actions - 1.5) ** 2)
        learner.apply(learner.propose(obs, actions, rewards, ["a"] * 8))
    with torch.no_grad():
        final_mean = float(policy(torch.ones(1, 1)))
    assert 1.0 < final_mean < 2.0


def test_reward_tensor_with_grad_is_never_differentiated() -> None:
    learner = _learner()
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0], requires_grad=True)
    obs, actions, _, keys = _batch()
    learner.propose(obs, actions, rewards, keys)
    assert rewards.grad is None


@pytest.mark.parametrize(
    "bad_fn",
    [
        lambda m, o, a: categorical_logp(m, o, a).unsqueeze(1),  # [N, 1]
        lambda m, o, a: categorical_logp(m, o, a)[:-1],  # one short
        lambda m, o, a: categorical_logp(m, o, a).tolist(),  # not a tensor
    ],
)
def test_wrong_log_prob_shape_raises_and_restores(bad_fn: Any) -> None:
    torch.manual_seed(0)
    learner = TorchPolicyLearner(nn.Linear(1, N_ITEMS), bad_fn)
    before = module_sha256(learner.module)
    with pytest.raises(InputError) as info:
        learner.propose(*_batch())
    assert info.value.field == "log_prob_fn"
    assert "(4,)" in info.value.one_line()
    assert module_sha256(learner.module) == before


def test_non_callable_log_prob_fn_raises() -> None:
    with pytest.raises(InputError, match="not callable"):
        TorchPolicyLearner(nn.Linear(1, 2), "log_softmax")  # type: ignore[arg-type]


def test_non_finite_loss_raises_and_leaves_weights_alone() -> None:
    learner = _learner()
    before = state_of(learner.module, clone=True)
    obs, actions, _, keys = _batch()
    with pytest.raises(GuardBlockedError, match="not finite"):
        learner.propose(obs, actions, [1.0, float("nan"), 0.0, 1.0], keys)
    assert module_sha256(learner.module) == learner.live_sha256
    for name, tensor in state_of(learner.module).items():
        assert torch.equal(tensor, before[name])


def test_group_of_one_raises_before_any_step() -> None:
    learner = _learner()
    with pytest.raises(InputError):
        learner.propose(torch.ones(3, 1), torch.tensor([0, 1, 2]), [1, 0, 1], ["a", "a", "b"])


def test_kl_to_reference_is_measured_and_reference_stays_frozen() -> None:
    learner = _learner(lr=0.2, kl_coef=0.5)
    assert learner.reference is not None
    ref_sha = module_sha256(learner.reference)
    first = learner.propose(*_batch())
    assert first.stats["kl_ref"] == 0.0  # the policy starts as the reference
    learner.apply(first)
    second = learner.propose(*_batch())
    assert second.stats["kl_ref"] > 0.0
    assert math.isclose(
        second.stats["loss"], second.stats["pg_loss"] + 0.5 * second.stats["kl_ref"], rel_tol=1e-5
    )
    assert module_sha256(learner.reference) == ref_sha
    assert not any(p.requires_grad for p in learner.reference.parameters())


def test_no_reference_without_kl() -> None:
    learner = _learner(kl_coef=0.0)
    assert learner.reference is None
    assert "kl_ref" not in learner.propose(*_batch()).stats

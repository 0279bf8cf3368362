"""The policy-gradient objective: RLOO advantages, the k3 KL estimate, the REINFORCE loss."""

from __future__ import annotations

import math

import pytest
import torch

from guarded_rl.errors import InputError
from guarded_rl.learn.objective import kl_k3, policy_gradient_loss, rloo_advantages


def test_rloo_two_pairs() -> None:
    adv = rloo_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0]), ["a", "a", "b", "b"])
    assert adv.tolist() == [1.0, -1.0, -1.0, 1.0]


def test_rloo_three_groups_of_different_sizes_interleaved() -> None:
    rewards = torch.tensor([1.0, 2.0, 1.0, 0.0, 4.0, 1.0, 0.0, 1.0, 1.0])
    keys = ["a", "b", "c", "a", "b", "c", "a", "c", "c"]
    # a: [1, 0, 0] -> 1 - 0, 0 - 0.5, 0 - 0.5
    # b: [2, 4]    -> 2 - 4, 4 - 2
    # c: [1, 1, 1, 1] -> all 0
    expected = [1.0, -2.0, 0.0, -0.5, 2.0, 0.0, -0.5, 0.0, 0.0]
    assert torch.allclose(rloo_advantages(rewards, keys), torch.tensor(expected))


def test_rloo_equals_scaled_centered_reward_and_sums_to_zero_per_group() -> None:
    gen = torch.Generator().manual_seed(0)
    rewards = torch.rand(12, generator=gen)
    keys = ["x"] * 5 + ["y"] * 3 + ["z"] * 4
    adv = rloo_advantages(rewards, keys)
    start = 0
    for n in (5, 3, 4):
        r = rewards[start : start + n]
        a = adv[start : start + n]
        assert abs(float(a.sum())) < 1e-5
        assert torch.allclose(a, n / (n - 1) * (r - r.mean()), atol=1e-6)
        start += n


def test_rloo_constant_rewards_give_zero_advantage() -> None:
    adv = rloo_advantages(torch.full((6,), 0.7), ["a"] * 3 + ["b"] * 3)
    assert torch.allclose(adv, torch.zeros(6), atol=1e-6)


def test_rloo_group_of_one_raises() -> None:
    with pytest.raises(InputError) as info:
        rloo_advantages(torch.tensor([1.0, 0.0, 1.0]), ["a", "a", "lonely"])
    assert info.value.field == "group_keys"
    assert info.value.got == "lonely"


def test_rloo_all_singletons_raise() -> None:
    with pytest.raises(InputError):
        rloo_advantages(torch.tensor([1.0, 0.0]), ["a", "b"])


@pytest.mark.parametrize(
    ("rewards", "keys"),
    [
        (torch.tensor([1.0, 0.0, 1.0]), ["a", "a"]),
        (torch.tensor([[1.0, 0.0]]), ["a", "a"]),
    ],
)
def test_rloo_shape_mismatch_raises(rewards: torch.Tensor, keys: list[str]) -> None:
    with pytest.raises(InputError, match="differ in length"):
        rloo_advantages(rewards, keys)


def test_kl_k3_zero_when_equal_positive_otherwise() -> None:
    logp = torch.log(torch.tensor([0.1, 0.5, 0.9]))
    assert torch.equal(kl_k3(logp, logp), torch.zeros(3))
    other = torch.log(torch.tensor([0.2, 0.4, 0.3]))
    assert bool((kl_k3(logp, other) > 0).all())
    r = other - logp
    assert torch.allclose(kl_k3(logp, other), torch.exp(r) - r - 1)


def test_kl_k3_is_unbiased_for_the_true_kl() -> None:
    p = torch.tensor([0.5, 0.3, 0.2])
    q = torch.tensor([0.2, 0.3, 0.5])
    true_kl = float((p * (p / q).log()).sum())
    gen = torch.Generator().manual_seed(0)
    x = torch.multinomial(p, 40_000, replacement=True, generator=gen)
    estimate = float(kl_k3(p.log()[x], q.log()[x]).mean())
    assert math.isclose(estimate, true_kl, rel_tol=0.05)


def test_loss_value_and_stats() -> None:
    seq_logp = torch.tensor([-1.0, -2.0, -3.0])
    adv = torch.tensor([1.0, -1.0, 0.5])
    loss, stats = policy_gradient_loss(seq_logp, adv)
    expected = -((1 * -1.0) + (-1 * -2.0) + (0.5 * -3.0)) / 3
    assert math.isclose(float(loss), expected, rel_tol=1e-6)
    assert set(stats) == {"pg_loss", "loss"}
    assert math.isclose(stats["loss"], expected, rel_tol=1e-6)

    kl = torch.tensor([0.1, 0.2, 0.3])
    loss_kl, stats_kl = policy_gradient_loss(seq_logp, adv, kl, kl_coef=2.0)
    assert math.isclose(float(loss_kl), expected + 2.0 * 0.2, rel_tol=1e-6)
    assert math.isclose(stats_kl["kl_ref"], 0.2, rel_tol=1e-6)
    assert math.isclose(stats_kl["pg_loss"], expected, rel_tol=1e-6)


def test_one_step_raises_probability_of_positive_advantage_action() -> None:
    logits = torch.zeros(3, requires_grad=True)
    actions = torch.tensor([0, 1, 2, 0])
    advantages = torch.tensor([1.0, -1.0, 0.0, 1.0])
    seq_logp = torch.log_softmax(logits, -1)[actions]
    loss, _ = policy_gradient_loss(seq_logp, advantages)
    loss.backward()
    with torch.no_grad():
        new_probs = torch.softmax(logits - 0.5 * logits.grad, -1)
    assert new_probs[0] > 1 / 3
    assert new_probs[1] < 1 / 3
    assert new_probs[0] > new_probs[2] > new_probs[1]


def test_kl_term_pulls_back_toward_the_reference() -> None:
    ref_logits = torch.zeros(3)
    logits = torch.tensor([2.0, 0.0, 0.0], requires_grad=True)
    actions = torch.tensor([0, 0, 1, 2])
    logp = torch.log_softmax(logits, -1)[actions]
    ref_logp = torch.log_softmax(ref_logits, -1)[actions]
    loss, _ = policy_gradient_loss(logp, torch.zeros(4), kl_k3(logp, ref_logp), kl_coef=1.0)
    loss.backward()
    with torch.no_grad():
        moved = torch.softmax(logits - 0.1 * logits.grad, -1)
        before = torch.softmax(logits, -1)
    assert moved[0] < before[0]  # the over-weighted action loses probability


def test_rewards_never_receive_gradient() -> None:
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0], requires_grad=True)
    logits = torch.zeros(2, requires_grad=True)
    seq_logp = torch.log_softmax(logits, -1)[torch.tensor([0, 1, 0, 1])]
    advantages = rloo_advantages(rewards, ["a", "a", "b", "b"])
    loss, _ = policy_gradient_loss(seq_logp, advantages)
    loss.backward()
    assert rewards.grad is None
    assert logits.grad is not None

"""The approval gate: approve small clean steps, send the rest to people, reject huge ones,
fail closed."""

from __future__ import annotations

import pytest
import torch

from guarded_rl.approval.gate import PolicyGate
from guarded_rl.learn.proposing import relative_change
from guarded_rl.policy import GatePolicy
from guarded_rl.records import CheckResult, UpdateProposal

GATE = PolicyGate(GatePolicy(max_step_kl=0.01, reject_step_kl=0.5))
PROPOSAL = UpdateProposal(0, "a" * 64, "b" * 64, {}, {}, stats={"param_change_rel": 0.001})


def _with_change(change: object) -> UpdateProposal:
    return UpdateProposal(0, "a" * 64, "b" * 64, {}, {}, stats={"param_change_rel": change})  # type: ignore[dict-item]


def _probe(kl: object) -> CheckResult:
    return CheckResult("probe_kl", passed=True, metrics={"kl_step": kl})


@pytest.mark.parametrize(
    ("kl", "outcome", "rule"),
    [
        (0.0, "approved", "auto_small_step"),
        (0.0099, "approved", "auto_small_step"),
        (0.01, "pending", "needs_review"),
        (0.2, "pending", "needs_review"),
        (0.4999, "pending", "needs_review"),
        (0.5, "rejected", "reject_step_kl"),
        (3.0, "rejected", "reject_step_kl"),
        (float("inf"), "rejected", "reject_step_kl"),
    ],
)
def test_kl_bands(kl: float, outcome: str, rule: str) -> None:
    decision = GATE.decide(PROPOSAL, [_probe(kl)])
    assert (decision.outcome, decision.rule) == (outcome, rule)
    assert f"{kl:.4f}" in decision.reasons[0]


def test_thresholds_come_from_the_policy() -> None:
    loose = PolicyGate(GatePolicy(max_step_kl=1.0, reject_step_kl=2.0))
    assert loose.decide(PROPOSAL, [_probe(0.2)]).outcome == "approved"
    assert loose.decide(PROPOSAL, [_probe(1.5)]).outcome == "pending"
    assert loose.decide(PROPOSAL, [_probe(2.0)]).outcome == "rejected"


@pytest.mark.parametrize(
    "checks",
    [
        [],
        [CheckResult("other", passed=True, metrics={"kl_step": 0.0})],
        [CheckResult("probe_kl", passed=True, metrics={})],
        [_probe(float("nan"))],
        [_probe(None)],
        [_probe("0.0")],
    ],
)
def test_missing_or_nan_probe_kl_is_pending(checks: list[CheckResult]) -> None:
    decision = GATE.decide(PROPOSAL, checks)
    assert decision.outcome == "pending"
    assert decision.rule == "missing_probe_kl"


def test_failed_check_holds_a_small_step() -> None:
    checks = [_probe(0.0), CheckResult("fairness", passed=False, message="gap too large")]
    decision = GATE.decide(PROPOSAL, checks)
    assert decision.outcome == "pending"
    assert decision.rule == "failed_checks"
    assert decision.reasons == ("check failed: fairness",)


def test_failed_probe_check_with_small_kl_is_not_approved() -> None:
    failed_probe = CheckResult("probe_kl", passed=False, metrics={"kl_step": 0.0})
    assert GATE.decide(PROPOSAL, [failed_probe]).outcome == "pending"


def test_every_failed_check_is_named() -> None:
    checks = [_probe(0.3), CheckResult("a", passed=False), CheckResult("b", passed=False)]
    decision = GATE.decide(PROPOSAL, checks)
    assert decision.outcome == "pending"
    assert decision.reasons == ("check failed: a", "check failed: b")


def test_huge_step_is_rejected_even_when_another_check_failed() -> None:
    checks = [_probe(2.0), CheckResult("fairness", passed=False)]
    decision = GATE.decide(PROPOSAL, checks)
    assert decision.outcome == "rejected"
    assert decision.rule == "reject_step_kl"


def test_a_failed_blocking_check_rejects_others_hold() -> None:
    gate = PolicyGate(GatePolicy(), blocking_checks={"bias_output"})
    kl = CheckResult("probe_kl", True, {"kl_step": 0.001})
    held = gate.decide(PROPOSAL, [kl, CheckResult("bias_data", False)])
    assert held.outcome == "pending" and held.rule == "failed_checks"
    rejected = gate.decide(PROPOSAL, [kl, CheckResult("bias_output", False, message="x")])
    assert rejected.outcome == "rejected" and rejected.rule == "failed_blocking_checks"
    assert rejected.reasons == ("check failed: bias_output",)
    assert gate.decide(PROPOSAL, [kl, CheckResult("bias_output", True)]).outcome == "approved"


@pytest.mark.parametrize(
    ("change", "outcome"),
    [(0.0, "approved"), (0.0499, "approved"), (0.05, "pending"), (0.3, "pending")],
)
def test_relative_parameter_change_bounds_auto_approval(change: float, outcome: str) -> None:
    decision = GATE.decide(_with_change(change), [_probe(0.001)])
    assert decision.outcome == outcome
    if outcome == "pending":
        assert decision.rule == "needs_review"
        assert decision.reasons == (f"parameter change {change:.4f} >= max_param_change 0.05",)


@pytest.mark.parametrize("change", [None, float("nan"), "0.001"])
def test_unmeasured_parameter_change_is_not_approved(change: object) -> None:
    proposal = UpdateProposal(0, "a" * 64, "b" * 64, {}, {})
    if change is not None:
        proposal = _with_change(change)
    decision = GATE.decide(proposal, [_probe(0.001)])
    assert (decision.outcome, decision.rule) == ("pending", "needs_review")
    assert decision.reasons == ("no relative parameter change was measured",)


def test_both_drift_reasons_are_named() -> None:
    decision = GATE.decide(_with_change(0.2), [_probe(0.02)])
    assert decision.reasons == (
        "probe KL 0.0200 >= max_step_kl 0.01",
        "parameter change 0.2000 >= max_param_change 0.05",
    )


def test_always_review_holds_even_the_smallest_step() -> None:
    gate = PolicyGate(GatePolicy(human_review="always"))
    decision = gate.decide(PROPOSAL, [_probe(0.0)])
    assert (decision.outcome, decision.rule) == ("pending", "always_review")
    # ... but review never rescues a step the policy rejects
    assert gate.decide(PROPOSAL, [_probe(0.9)]).outcome == "rejected"


def test_every_nth_proposed_update_goes_to_review() -> None:
    gate = PolicyGate(GatePolicy(review_every=3))
    outcomes = [gate.decide(PROPOSAL, [_probe(0.0)]).rule for _ in range(7)]
    assert outcomes == [
        "auto_small_step",
        "auto_small_step",
        "review_every",
        "auto_small_step",
        "auto_small_step",
        "review_every",
        "auto_small_step",
    ]


def test_review_every_counts_updates_proposed_before_a_resume() -> None:
    gate = PolicyGate(GatePolicy(review_every=3), proposed_before=2)
    assert gate.decide(PROPOSAL, [_probe(0.0)]).rule == "review_every"


def test_failed_checks_come_before_review_rules() -> None:
    gate = PolicyGate(GatePolicy(human_review="always"))
    decision = gate.decide(PROPOSAL, [_probe(0.0), CheckResult("bias_data", False)])
    assert decision.rule == "failed_checks"


def test_a_step_from_all_zero_weights_is_held_and_says_why() -> None:
    zero = {"w": torch.zeros(3)}
    assert relative_change(zero, zero) == 0.0
    change = relative_change(zero, {"w": torch.ones(3)})
    decision = GATE.decide(_with_change(change), [_probe(0.001)])
    assert (decision.outcome, decision.rule) == ("pending", "needs_review")
    assert "weights before the step were all zero" in decision.reasons[0]

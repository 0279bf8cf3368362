"""The KL approval gate: approve small steps, hold medium ones, reject huge ones, fail closed."""

from __future__ import annotations

import pytest

from guarded_rl.approval.gate import KLGate
from guarded_rl.policy import GatePolicy
from guarded_rl.records import CheckResult, UpdateProposal

GATE = KLGate(GatePolicy(max_step_kl=0.01, reject_step_kl=0.5))
PROPOSAL = UpdateProposal(0, "a" * 64, "b" * 64, {}, {})


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
    assert len(decision.reasons) == 1
    assert f"{kl:.4f}" in decision.reasons[0]


def test_thresholds_come_from_the_policy() -> None:
    loose = KLGate(GatePolicy(max_step_kl=1.0, reject_step_kl=2.0))
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
    gate = KLGate(GatePolicy(), blocking_checks={"bias_output"})
    kl = CheckResult("probe_kl", True, {"kl_step": 0.001})
    held = gate.decide(PROPOSAL, [kl, CheckResult("bias_data", False)])
    assert held.outcome == "pending" and held.rule == "failed_checks"
    rejected = gate.decide(PROPOSAL, [kl, CheckResult("bias_output", False, message="x")])
    assert rejected.outcome == "rejected" and rejected.rule == "failed_blocking_checks"
    assert rejected.reasons == ("check failed: bias_output",)
    assert gate.decide(PROPOSAL, [kl, CheckResult("bias_output", True)]).outcome == "approved"

"""The approval gate: an update is a proposal until a rule here approves it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from guarded_rl.policy import GatePolicy
from guarded_rl.records import CheckResult, Decision, UpdateProposal


class ApprovalGate(Protocol):
    def decide(self, proposal: UpdateProposal, checks: Sequence[CheckResult]) -> Decision: ...


class KLGate:
    """Approves small steps by itself, leaves larger ones for a person, rejects huge ones.

    Fails closed: without a `probe_kl` check result, or with a failed check, nothing is approved.
    """

    def __init__(self, policy: GatePolicy, *, blocking_checks: Collection[str] = ()) -> None:
        """`blocking_checks`: checks whose failure rejects the update (others hold it)."""
        self.policy = policy
        self.blocking_checks = frozenset(blocking_checks)

    def decide(self, proposal: UpdateProposal, checks: Sequence[CheckResult]) -> Decision:
        by_name = {c.name: c for c in checks}
        probe = by_name.get("probe_kl")
        kl = probe.metrics.get("kl_step") if probe is not None else None
        if not isinstance(kl, float) or kl != kl:  # missing or NaN
            return Decision("pending", "missing_probe_kl", ("no probe KL was measured",))
        if kl >= self.policy.reject_step_kl:
            return Decision(
                "rejected",
                "reject_step_kl",
                (f"probe KL {kl:.4f} >= reject_step_kl {self.policy.reject_step_kl}",),
            )
        failed = [c.name for c in checks if not c.passed]
        blocking = [c for c in checks if not c.passed and c.name in self.blocking_checks]
        if blocking:
            return Decision(
                "rejected",
                "failed_blocking_checks",
                tuple(f"check failed: {c.name}" for c in blocking),
            )
        if failed:
            return Decision("pending", "failed_checks", tuple(f"check failed: {n}" for n in failed))
        if kl < self.policy.max_step_kl:
            return Decision(
                "approved",
                "auto_small_step",
                (f"probe KL {kl:.4f} < max_step_kl {self.policy.max_step_kl}",),
            )
        return Decision(
            "pending",
            "needs_review",
            (f"probe KL {kl:.4f} >= max_step_kl {self.policy.max_step_kl}",),
        )

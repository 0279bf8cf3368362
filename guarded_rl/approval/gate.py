"""The approval gate: an update is a proposal until a rule here approves it.

Rules, in order (the first that matches decides):
1. no probe KL measured                       → pending (fail closed)
2. probe KL ≥ `reject_step_kl`                → rejected
3. a blocking check failed                    → rejected
4. any other check failed (escalated)         → pending, for a person
5. `human_review = "always"`                  → pending
6. every `review_every`-th proposed update    → pending
7. drift over a threshold (probe KL ≥ `max_step_kl`, relative parameter change ≥
   `max_param_change`, or either not measured) → pending
8. otherwise                                  → approved by the gate itself
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Protocol

from guarded_rl.policy import GatePolicy
from guarded_rl.records import CheckResult, Decision, UpdateProposal


class ApprovalGate(Protocol):
    def decide(self, proposal: UpdateProposal, checks: Sequence[CheckResult]) -> Decision: ...


class PolicyGate:
    """Approves small, clean steps by itself; sends the rest to people; rejects huge ones.

    Fails closed: without a probe KL or a parameter-change figure nothing is auto-approved.
    """

    def __init__(
        self,
        policy: GatePolicy,
        *,
        blocking_checks: Collection[str] = (),
        proposed_before: int = 0,
    ) -> None:
        """`blocking_checks`: checks whose failure rejects the update (others hold it);
        `proposed_before`: updates this run proposed before (on resume), for `review_every`."""
        self.policy = policy
        self.blocking_checks = frozenset(blocking_checks)
        self.proposed = proposed_before

    def decide(self, proposal: UpdateProposal, checks: Sequence[CheckResult]) -> Decision:
        self.proposed += 1
        policy = self.policy
        by_name = {c.name: c for c in checks}
        probe = by_name.get("probe_kl")
        kl = probe.metrics.get("kl_step") if probe is not None else None
        if not isinstance(kl, float) or math.isnan(kl):  # inf is measured: it rejects
            return Decision("pending", "missing_probe_kl", ("no probe KL was measured",))
        if kl >= policy.reject_step_kl:
            return Decision(
                "rejected",
                "reject_step_kl",
                (f"probe KL {kl:.4f} >= reject_step_kl {policy.reject_step_kl}",),
            )
        blocking = [c for c in checks if not c.passed and c.name in self.blocking_checks]
        if blocking:
            return Decision(
                "rejected",
                "failed_blocking_checks",
                tuple(f"check failed: {c.name}" for c in blocking),
            )
        failed = [c.name for c in checks if not c.passed]
        if failed:
            return Decision("pending", "failed_checks", tuple(f"check failed: {n}" for n in failed))
        if policy.human_review == "always":
            return Decision("pending", "always_review", ("policy: every update needs a person",))
        if policy.review_every and self.proposed % policy.review_every == 0:
            return Decision(
                "pending",
                "review_every",
                (f"update {self.proposed} of this run: every {policy.review_every}th is reviewed",),
            )
        drift = self._drift(kl, proposal.stats.get("param_change_rel"))
        if drift:
            return Decision("pending", "needs_review", drift)
        return Decision(
            "approved",
            "auto_small_step",
            (
                f"probe KL {kl:.4f} < max_step_kl {policy.max_step_kl}",
                f"parameter change {proposal.stats['param_change_rel']:.4f} < "
                f"max_param_change {policy.max_param_change}",
            ),
        )

    def _drift(self, kl: float, change: float | None) -> tuple[str, ...]:
        """Reasons the step is too large to approve without a person (empty: small enough)."""
        policy = self.policy
        reasons = []
        if kl >= policy.max_step_kl:
            reasons.append(f"probe KL {kl:.4f} >= max_step_kl {policy.max_step_kl}")
        if change == math.inf:
            reasons.append(
                "parameter change is unbounded: the weights before the step were all zero "
                "(start from non-zero weights, or approve this step in review)"
            )
        elif not isinstance(change, float) or not math.isfinite(change):
            reasons.append("no relative parameter change was measured")
        elif change >= policy.max_param_change:
            reasons.append(
                f"parameter change {change:.4f} >= max_param_change {policy.max_param_change}"
            )
        return tuple(reasons)

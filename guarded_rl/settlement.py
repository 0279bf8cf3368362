"""What happens to a proposal after the gate, on the record: applied, held for people, or
rejected. Shared by the Guard (its own cycles) and the integrations (a user's loop)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from guarded_rl.approval.queue import QueuedProposal, ReviewDesk, proposal_id_of
from guarded_rl.audit.checkpoints import CheckpointStore
from guarded_rl.audit.log import AuditLog
from guarded_rl.errors import IntegrityError
from guarded_rl.policy import GuardPolicy
from guarded_rl.records import Decision, UpdateProposal
from guarded_rl.weights import state_sha256

if TYPE_CHECKING:
    import torch


class LiveModel(Protocol):
    """What settling needs of a learner: the live weights, and installing approved ones."""

    @property
    def live_sha256(self) -> str: ...

    def apply(self, proposal: UpdateProposal) -> None: ...

    def checkpoint_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]: ...


@contextmanager
def _untimed(name: str) -> Iterator[None]:
    yield


class Settlement:
    """Records the gate's decision and acts on it; keeps the review queue's proposals."""

    def __init__(
        self,
        *,
        policy: GuardPolicy,
        learner: LiveModel,
        audit: AuditLog,
        checkpoints: CheckpointStore,
        checkpointed: Any = (),
        stage: Callable[[str], AbstractContextManager[None]] = _untimed,
    ) -> None:
        """`checkpointed`: weights commitments already in a checkpoint; `stage(name)` times
        a stage (the Guard's per-stage clock)."""
        self.policy = policy
        self.learner = learner
        self.audit = audit
        self.checkpoints = checkpoints
        self.applied = 0
        #: the review queue; None: pending proposals are recorded but nobody can decide them
        self.review: ReviewDesk | None = None
        self._checkpointed = set(checkpointed)
        self._stage = stage

    def note_checkpoint(self, model_sha256: str) -> None:
        """Weights already in a checkpoint (saved by the caller, e.g. the run's start)."""
        self._checkpointed.add(model_sha256)

    def save_checkpoint(self, reason: str) -> str:
        """Store live weights and optimizer state; record it; return the checkpoint id."""
        model_state, optimizer_state = self.learner.checkpoint_state()
        checkpoint_id = self.checkpoints.save(model_state, optimizer_state)
        self._checkpointed.add(self.learner.live_sha256)
        self.audit.append(
            "checkpoint_saved",
            {
                "checkpoint_id": checkpoint_id,
                "model_sha256": self.learner.live_sha256,
                "with_optimizer": True,
                "reason": reason,
            },
        )
        return checkpoint_id

    def behind_review(self, decision: Decision) -> Decision:
        """While proposals await people the live model does not change under them: a step
        the gate would approve by itself waits too (approving one supersedes the others)."""
        if decision.outcome != "approved" or self.review is None or not self.review.pending:
            return decision
        waiting = ", ".join(p.proposal_id for p in self.review.pending)
        return Decision(
            "pending",
            "behind_pending_review",
            (
                *decision.reasons,
                f"{waiting} awaiting review: the live model changes only by a decision on them",
            ),
        )

    def settle(self, cycle: int, proposal: UpdateProposal, decision: Decision) -> None:
        """Record the decision; apply an approved proposal; queue a pending one for review."""
        verdict = {"cycle": cycle, "rule": decision.rule, "reasons": list(decision.reasons)}
        if decision.outcome == "approved":
            with self._stage("audit"):
                self.audit.append("update_approved", {**verdict, "approver": "gate:auto"})
            with self._stage("apply"):
                self.learner.apply(proposal)
            self._applied(cycle, None)
        elif decision.outcome == "pending":
            self._queue_for_review(cycle, proposal, verdict)
        else:
            self.audit.append("update_rejected", verdict)

    def _applied(self, cycle: int, proposal_id: str | None) -> None:
        """Record that new weights are live; checkpoint periodically; close stale proposals."""
        self.applied += 1
        payload: dict[str, Any] = {"cycle": cycle, "model_sha256": self.learner.live_sha256}
        if proposal_id is not None:
            payload["proposal_id"] = proposal_id
        with self._stage("audit"):
            self.audit.append("update_applied", payload)
        if self.applied % self.policy.audit.checkpoint_every == 0:
            with self._stage("checkpoint"):
                self.save_checkpoint("periodic")
        if self.review is not None:
            self.review.live_sha256 = self.learner.live_sha256
            self.review.supersede()

    def _queue_for_review(
        self, cycle: int, proposal: UpdateProposal, verdict: dict[str, Any]
    ) -> None:
        """Persist the candidate (weights and optimizer: applying it later must resume
        training exactly) and the live weights it is compared with, then record it."""
        with self._stage("checkpoint"):
            checkpoint_id = self.checkpoints.save(
                proposal.candidate_state, proposal.optimizer_state
            )
            if self.learner.live_sha256 not in self._checkpointed:
                self.save_checkpoint("review_base")
        gate = self.policy.gate
        payload = {
            **verdict,
            "proposal_id": proposal_id_of(cycle),
            "base_sha256": proposal.base_sha256,
            "candidate_sha256": proposal.candidate_sha256,
            "checkpoint_id": checkpoint_id,
            "with_optimizer": True,
            "approvals_required": gate.approvals_required,
            "expiry_hours": gate.review_expiry_hours,  # from the entry's time
        }
        entry = self.audit.append("update_pending", payload)
        if self.review is not None:
            self.review.enqueue(payload, entry.ts)

    def apply_reviewed(self, queued: QueuedProposal, record_approval: Callable[[], None]) -> None:
        """Install a proposal people approved: its stored candidate, checked against the log."""
        state, optimizer = self.checkpoints.load(queued.checkpoint_id)
        if optimizer is None or state_sha256(state) != queued.candidate_sha256:
            raise IntegrityError(
                "the stored candidate is not the proposal's weights",
                field="checkpoint_id",
                got=queued.checkpoint_id[:12],
                expected=f"weights {queued.candidate_sha256[:12]} with optimizer state",
            )
        record_approval()
        with self._stage("apply"):
            self.learner.apply(
                UpdateProposal(
                    cycle=queued.cycle,
                    base_sha256=queued.base_sha256,
                    candidate_sha256=queued.candidate_sha256,
                    candidate_state=state,
                    optimizer_state=optimizer,
                )
            )
        self._applied(queued.cycle, queued.proposal_id)

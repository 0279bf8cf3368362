"""`review submit` / `review approve|reject`: record a checked, signed decision on a run.

Without a live run the decision is recorded in the signed log in a session on the run (and,
when it completes the required approvals, the stored candidate becomes live on the record:
`update_applied` and its checkpoint, from which `run --resume` continues). With a live run
(its session holds the lock) the checked decision goes to the run's inbox, and the loop
records and applies it before its next cycle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from guarded_rl.approval.decision import SignedDecision
from guarded_rl.approval.queue import (
    QueuedProposal,
    ReviewDesk,
    drop_in_inbox,
    stored_candidate_verifier,
)
from guarded_rl.approval.run_review import RunReview
from guarded_rl.audit.live_summary import refresh_live_state
from guarded_rl.rundir.lock import RunInUse
from guarded_rl.rundir.session import RunSession, open_session


def submit(
    run_dir: str | Path,
    signed: SignedDecision,
    *,
    key_file: Path | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Record a decision (no live run) or hand it to the live run; nothing on any error."""
    run_dir = Path(run_dir)
    RunReview.read(run_dir).check(signed, now)  # fails before anything is written
    try:
        with open_session(run_dir, key_file=key_file, writing=True) as session:
            return _record(session, signed, now)
    except RunInUse:
        path = drop_in_inbox(run_dir, signed)
        return {
            "proposal_id": signed.body.proposal_id,
            "status": "queued",
            "detail": f"the run is live: its loop records this decision before its next cycle "
            f"({path.relative_to(run_dir)})",
        }


def _record(session: RunSession, signed: SignedDecision, now: float | None) -> dict[str, Any]:
    run_dir = session.run_dir
    review = RunReview.of(run_dir, session.history)  # as it is now that nobody else writes
    review.check(signed, now)
    try:
        desk = ReviewDesk(
            append=session.append,
            origin=review.origin,
            policy=review.policy.gate,
            queue=review.queue,
            operators=review.operators,
            live_sha256=review.history.live_sha256(),
            apply=_apply_on_record(session.append),
            clock=(lambda: now) if now is not None else time.time,
            verify=stored_candidate_verifier(session.checkpoints),
        )
        earlier = desk.ingest(run_dir)  # decisions a live run left behind
        status = desk.record(signed)
        housekeeping = [f"{p.proposal_id}: superseded" for p in desk.supersede()]
        housekeeping += [f"{p.proposal_id}: expired" for p in desk.expire()]
    finally:
        session.sign()  # whatever was written, even if the decision was refused after all
    refresh_live_state(run_dir)  # an applied candidate: summary.json names the weights now live
    return {
        "proposal_id": signed.body.proposal_id,
        "status": status,
        "detail": "recorded in the audit log"
        + (
            " and applied: `guarded-rl run --resume` continues from it"
            if status == "applied"
            else ""
        ),
        "also": earlier + housekeeping,
    }


def _apply_on_record(append: Any) -> Any:
    """Without a live model: the stored candidate becomes the live weights on the record."""

    def apply(proposal: QueuedProposal, record_approval: Callable[[], None]) -> None:
        # the desk verified the stored candidate just before, under the same run lock
        record_approval()
        append(
            "update_applied",
            {
                "cycle": proposal.cycle,
                "proposal_id": proposal.proposal_id,
                "model_sha256": proposal.candidate_sha256,
            },
        )
        append(
            "checkpoint_saved",
            {
                "checkpoint_id": proposal.checkpoint_id,
                "model_sha256": proposal.candidate_sha256,
                "with_optimizer": True,
                "reason": "review_applied",
            },
        )

    return apply

"""The review queue inside a running loop: settle decisions between cycles, or wait for them.

A live run holds the run lock, so `guarded-rl review` leaves checked, signed decisions in the
run's inbox; the loop records and applies them here, before each cycle (and while it waits,
with `gate.on_pending = "wait"`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from guarded_rl.approval.queue import (
    Operators,
    QueuedProposal,
    ReviewDesk,
    queue_from_entries,
    stored_candidate_verifier,
)
from guarded_rl.audit.checkpoints import CheckpointStore
from guarded_rl.audit.log import AuditEntry, AuditLog
from guarded_rl.policy import GuardPolicy


class _Live(Protocol):
    @property
    def live_sha256(self) -> str: ...


class Reviewable(Protocol):
    """What a review desk needs of a loop (`Guard`, `Settlement`): its log, policy, live
    weights, checkpoints, and a way to install an approved candidate. Defined here so the
    review layer depends only downward."""

    audit: AuditLog
    policy: GuardPolicy
    checkpoints: CheckpointStore
    review: ReviewDesk | None

    @property
    def learner(self) -> _Live: ...

    def apply_reviewed(
        self, queued: QueuedProposal, record_approval: Callable[[], None]
    ) -> None: ...

#: How often a waiting loop looks at its inbox.
POLL_SECONDS = 1.0

#: Called while waiting: the proposals waited for, and the seconds left.
OnWaiting = Callable[[list[QueuedProposal], float], None]


def attach_review(
    guard: Reviewable,
    *,
    origin: str,
    operators: Operators,
    entries: Iterable[AuditEntry] = (),
    clock: Callable[[], float] = time.time,
) -> ReviewDesk:
    """Give the guard its review desk, with the queue the log has so far (on resume)."""
    desk = ReviewDesk(
        append=guard.audit.append,
        origin=origin,
        policy=guard.policy.gate,
        queue=queue_from_entries(entries),
        operators=operators,
        live_sha256=guard.learner.live_sha256,
        apply=guard.apply_reviewed,
        clock=clock,
        verify=stored_candidate_verifier(guard.checkpoints),
    )
    guard.review = desk
    return desk


def settle(desk: ReviewDesk, run_dir: Path) -> list[str]:
    """Record waiting decisions, close stale and expired proposals; one line per event."""
    lines = desk.ingest(run_dir)
    lines += [f"{p.proposal_id}: superseded" for p in desk.supersede()]
    lines += [f"{p.proposal_id}: expired" for p in desk.expire()]
    return lines


def wait_for_review(
    desk: ReviewDesk,
    run_dir: Path,
    *,
    timeout: float,
    on_settled: Callable[[list[str]], None],
    on_waiting: OnWaiting | None = None,
    poll: float = POLL_SECONDS,
) -> bool:
    """Block until no proposal is pending (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while desk.pending:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if on_waiting is not None:
            on_waiting(desk.pending, left)
        time.sleep(min(poll, max(left, 0.0)))
        lines = settle(desk, run_dir)
        if lines:
            on_settled(lines)
    return True

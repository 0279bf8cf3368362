"""Review operations on a run directory: read the queue, sign a decision, submit it.

A decision is checked completely before anything is written. Without a live run the command
takes the run lock, records the decision in the signed log, and, when it completes the
required approvals, makes the candidate live on the record (`update_applied` and its stored
checkpoint, from which `run --resume` continues). With a live run the checked decision goes
to the run's inbox and the loop records and applies it before its next cycle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from guarded_rl.approval.decision import SignedDecision, sign_decision
from guarded_rl.approval.queue import (
    Operators,
    QueuedProposal,
    ReviewDesk,
    check_decision,
    drop_in_inbox,
    no_reviewers,
    operators_of,
    queue_from_entries,
    queued,
    stored_candidate_verifier,
)
from guarded_rl.approval.reviewers import (
    Registry,
    ReviewError,
    load_registry,
    load_reviewer_key,
    raw_public_key,
)
from guarded_rl.audit.history import RunHistory
from guarded_rl.audit.log import LOG_FILE
from guarded_rl.audit.run_lock import RunInUse, run_lock
from guarded_rl.audit.signer import origin_of
from guarded_rl.errors import InputError
from guarded_rl.policy import GuardPolicy, parse_policy


@dataclass(frozen=True)
class RunReview:
    """A run's review state as its (verified) log tells it."""

    run_dir: Path
    history: RunHistory
    policy: GuardPolicy
    origin: str
    queue: dict[str, QueuedProposal]
    operators: Operators

    @classmethod
    def read(cls, run_dir: str | Path, *, while_written: bool = True) -> RunReview:
        run_dir = Path(run_dir)
        if not (run_dir / LOG_FILE).is_file():
            raise InputError(
                "not a run directory (no audit.jsonl)",
                field="RUN_DIR",
                got=str(run_dir),
                expected="a directory written by `guarded-rl run`",
            )
        history = RunHistory.load(run_dir, while_written=while_written)
        source = f"{run_dir / LOG_FILE}:run_started"
        policy = parse_policy(history.started.get("policy", {}), source=source)
        return cls(
            run_dir,
            history,
            policy,
            origin_of(history.started["run_id"]),
            queue_from_entries(history.entries),
            operators_of(history.entries),
        )

    def registry(self) -> Registry | None:
        path = self.policy.gate.reviewers
        return load_registry(path) if path else None

    def proposal(self, proposal_id: str) -> QueuedProposal:
        return queued(self.queue, proposal_id)

    def check(self, signed: SignedDecision, now: float | None = None) -> None:
        check_decision(
            signed,
            origin=self.origin,
            queue=self.queue,
            registry=self.registry(),
            policy=self.policy.gate,
            operators=self.operators,
            live_sha256=self.history.live_sha256(),
            now=time.time() if now is None else now,
        )


def sign_for(
    run_dir: str | Path,
    proposal_id: str,
    decision: Literal["approve", "reject"],
    *,
    reviewer: str,
    key_file: Path,
    note: str,
    now: float | None = None,
) -> SignedDecision:
    """Sign a decision as `reviewer` with `key_file`, after checking it would be accepted."""
    review = RunReview.read(run_dir)
    registry = review.registry()
    if registry is None:
        raise no_reviewers()
    registered = registry.by_name(reviewer)
    key = load_reviewer_key(key_file)
    if raw_public_key(key.public_key()).hex() != registered.public_key:
        raise ReviewError(
            f"this key is not the one registered for {reviewer}",
            file=str(key_file),
            field="--key",
            expected=f"the private key of {registered.fingerprint} ({registry.path})",
        )
    proposal = review.proposal(proposal_id)
    signed = sign_decision(
        key,
        origin=review.origin,
        proposal_id=proposal_id,
        candidate_sha256=proposal.candidate_sha256,
        decision=decision,
        note=" ".join(note.split()),
        now=now,
    )
    review.check(signed, now)
    return signed


def write_decision(path: Path, signed: SignedDecision, *, force: bool = False) -> None:
    """A signed decision as a file, to be submitted by someone else (`review submit`): a
    user-named output, so never over an existing file (unless `force`) or a run's own file."""
    from guarded_rl.output import write_output

    data = (signed.model_dump_json(indent=2) + "\n").encode()
    write_output(Path(path), data, field="--out", force=force, mode=0o600)


def read_decision(path: Path) -> SignedDecision:
    from pydantic import ValidationError

    from guarded_rl.approval.inbox_file import read_small_file
    from guarded_rl.policy import validation_error_to_input_error

    raw = read_small_file(Path(path))  # a regular file of a decision's size, or one line
    try:
        return SignedDecision.model_validate_json(raw)
    except ValidationError as exc:
        raise validation_error_to_input_error(
            exc, SignedDecision, str(path), error_cls=ReviewError
        ) from None


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
        lock = run_lock(run_dir)
        lock.__enter__()
    except RunInUse:
        path = drop_in_inbox(run_dir, signed)
        return {
            "proposal_id": signed.body.proposal_id,
            "status": "queued",
            "detail": f"the run is live: its loop records this decision before its next cycle "
            f"({path.relative_to(run_dir)})",
        }
    try:
        return _record_locked(run_dir, signed, key_file, now)
    finally:
        lock.__exit__(None, None, None)


def _record_locked(
    run_dir: Path, signed: SignedDecision, key_file: Path | None, now: float | None
) -> dict[str, Any]:
    from guarded_rl.audit.appendable import run_signing_key
    from guarded_rl.audit.checkpoints import CheckpointStore
    from guarded_rl.audit.signer import HeadSigner

    review = RunReview.read(run_dir, while_written=False)  # nobody else writes now
    review.check(signed, now)
    key = run_signing_key(run_dir, key_file)  # proves the log and that the key is its own
    signer = HeadSigner.for_run(run_dir, key, review.history.started["run_id"])
    try:
        desk = ReviewDesk(
            append=signer.log.append,
            origin=review.origin,
            policy=review.policy.gate,
            queue=review.queue,
            operators=review.operators,
            live_sha256=review.history.live_sha256(),
            apply=_apply_on_record(signer.log.append),
            clock=(lambda: now) if now is not None else time.time,
            verify=stored_candidate_verifier(CheckpointStore(run_dir / "checkpoints")),
        )
        earlier = desk.ingest(run_dir)  # decisions a live run left behind
        status = desk.record(signed)
        housekeeping = [f"{p.proposal_id}: superseded" for p in desk.supersede()]
        housekeeping += [f"{p.proposal_id}: expired" for p in desk.expire()]
    finally:
        signer.sign()  # whatever was written, even if the decision was refused after all
        signer.log.close()
    from guarded_rl.audit.live_summary import refresh_live_state

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

"""Review operations on a run directory: read the queue, sign a decision, submit it.

A decision is checked completely before anything is written. Without a live run the command
takes the run lock, records the decision in the signed log, and, when it completes the
required approvals, makes the candidate live on the record (`update_applied` and its stored
checkpoint, from which `run --resume` continues). With a live run the checked decision goes
to the run's inbox and the loop records and applies it before its next cycle.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from guarded_rl.approval.decision import SignedDecision, sign_decision
from guarded_rl.approval.queue import (
    Operators,
    QueuedProposal,
    check_decision,
    no_reviewers,
    operators_of,
    queue_from_entries,
    queued,
)
from guarded_rl.approval.reviewers import (
    Registry,
    ReviewError,
    load_registry,
    load_reviewer_key,
    raw_public_key,
)
from guarded_rl.audit.history import RunHistory
from guarded_rl.audit.signer import origin_of
from guarded_rl.errors import InputError
from guarded_rl.policy import GuardPolicy, parse_policy
from guarded_rl.rundir.paths import LOG_FILE


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
        return cls.of(run_dir, RunHistory.load(run_dir, while_written=while_written))

    @classmethod
    def of(cls, run_dir: str | Path, history: RunHistory) -> RunReview:
        """The review state of a history already loaded and verified (by a run session)."""
        run_dir = Path(run_dir)
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

"""The review queue: proposals waiting for people, and the one place their decisions are settled.

The queue is not a second database: it is read from the run's signed audit log. A proposal
enters it with an `update_pending` entry (its candidate weights and optimizer state are in the
checkpoint store) and leaves it with `update_applied` (approved by enough reviewers),
`update_rejected` (a reviewer rejected it, it expired, or the weights it was made from are no
longer live: superseded). Every accepted decision is a `review_decision` entry with the
reviewer's signature. So the queue survives restarts and crashes exactly as the log does.

While a run is live it holds the run lock; `guarded-rl review` then verifies a decision and
drops it, signed, into `RUN_DIR/review/inbox/`, and the running loop settles it at its next
cycle. Without a live run the review command takes the lock and settles it itself.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from guarded_rl.approval.decision import SignedDecision
from guarded_rl.approval.inbox_file import read_small_file
from guarded_rl.approval.reviewers import (
    Registry,
    Reviewer,
    ReviewError,
    fingerprint_of,
    load_registry,
    load_reviewer_key,
    raw_public_key,
)
from guarded_rl.atomic import atomic_write
from guarded_rl.audit.events import (
    ReviewDecision,
    RunResumed,
    RunStarted,
    UpdateApplied,
    UpdatePending,
    UpdateRejected,
    parse_event,
)
from guarded_rl.audit.log import AuditEntry, iso_time
from guarded_rl.errors import GuardedRLError, first_few
from guarded_rl.policy import GatePolicy
from guarded_rl.rundir.paths import INBOX, REFUSED

#: A decision may be signed at most this far in the future of the machine that settles it.
CLOCK_SKEW_SECONDS = 300.0
#: Longest refusal reason kept or shown (it may quote the refused file).
REASON_LIMIT = 200


@dataclass
class QueuedProposal:
    """One update that went to review, and what has happened to it since."""

    proposal_id: str
    cycle: int
    base_sha256: str
    candidate_sha256: str
    checkpoint_id: str
    created: float
    expires_at: float
    approvals_required: int
    rule: str
    reasons: list[str]
    status: str = "pending"  # pending | applied | rejected | expired | superseded
    approvals: list[str] = field(default_factory=list)  # reviewer key fingerprints, in order
    decisions: list[dict[str, Any]] = field(default_factory=list)  # review_decision payloads
    closed_because: str = ""


@dataclass(frozen=True, slots=True)
class Operators:
    """Who operated the run (started or resumed it): name commitments, key fingerprints, and
    each start's proof that its operator held that key (`claims`: fingerprint, proof, entry
    type, previous entry hash). `unbound` counts starts whose operator named no key."""

    commitments: frozenset[str] = frozenset()
    fingerprints: frozenset[str] = frozenset()
    claims: tuple[tuple[str, str, str, str], ...] = ()
    unbound: int = 0

    def includes(self, origin: str, reviewer: Reviewer) -> bool:
        return (
            operator_commitment(origin, reviewer.name) in self.commitments
            or reviewer.fingerprint in self.fingerprints
        )

    def unproven(self, origin: str, registry: Registry) -> str | None:
        """Why four-eyes cannot tell the operators from a reviewer, or None when every start
        and resume was signed with a registered reviewer key. A name alone proves nothing:
        anyone can type `--operator someone-else`."""
        if self.unbound:
            return (
                f"{self.unbound} start(s) or resume(s) of this run named no operator key, so "
                "four-eyes cannot tell the operator from a reviewer"
            )
        for fingerprint, proof, kind, prev in self.claims:
            reviewer = registry.by_fingerprint(fingerprint)
            if reviewer is None:
                return f"the operator key {fingerprint} of a {kind} is not in the reviewers file"
            try:
                reviewer.verification_key().verify(
                    bytes.fromhex(proof), operator_proof_message(origin, kind, prev)
                )
            except (ValueError, InvalidSignature):
                return f"the operator's proof of key {fingerprint} in a {kind} does not verify"
        return None


def operator_proof_message(origin: str, kind: str, prev: str) -> bytes:
    """What an operator signs with their reviewer key when starting or resuming a run: bound
    to the run and to the entry's place in the log, so a proof cannot be reused."""
    return f"guarded-rl operator proof\0{origin}\0{kind}\0{prev}".encode()


def operator_identity(
    registry: Registry | None,
    name: str | None,
    key_file: Path | None,
    *,
    four_eyes: bool,
    default_name: str,
) -> tuple[str, Ed25519PrivateKey | None]:
    """Who operates the run, checked before anything is written.

    With four-eyes on and a reviewers file, the operator proves who they are with their own
    reviewer key (`--operator-key`, any role in the file); the name is then the file's name for
    that key. Otherwise the operator is the name given (default: the login name).
    """
    if key_file is None:
        if four_eyes and registry is not None:
            raise ReviewError(
                "four-eyes is on, so the operator must prove who they are with their reviewer "
                "key (a name alone can be anyone's)",
                field="--operator-key",
                expected=f"the private key of a person in {registry.path} (any role)",
            )
        return name or default_name, None
    if registry is None:
        raise ReviewError(
            "an operator key is checked against the reviewers file, and this run has none",
            field="--operator-key",
            got=str(key_file),
            expected="--reviewers FILE (or gate.reviewers in the policy)",
        )
    key = load_reviewer_key(key_file)
    fingerprint = fingerprint_of(raw_public_key(key.public_key()))
    reviewer = registry.by_fingerprint(fingerprint)
    if reviewer is None:
        raise ReviewError(
            f"key {fingerprint} is not in the reviewers file",
            file=str(key_file),
            field="--operator-key",
            expected=f"the private key of a person in {registry.path}",
        )
    if name is not None and name != reviewer.name:
        raise ReviewError(
            f"the operator key is {reviewer.name}'s",
            field="--operator",
            got=name,
            expected=f"{reviewer.name} (or no --operator)",
        )
    return reviewer.name, key


def expiry_of(created: float, hours: float) -> float:
    """When a proposal made at `created` (its log entry's time) expires."""
    return round(created + hours * 3600, 3)


def proposal_id_of(cycle: int) -> str:
    return f"u{cycle}"


def operator_commitment(origin: str, name: str) -> str:
    """The operator's name is not logged, only this salted hash of it (per run)."""
    digest = hashlib.sha256(f"guarded-rl operator\0{origin}\0{name}".encode())
    return digest.hexdigest()[:32]


def operator_record(
    origin: str,
    name: str,
    registry: Registry | None,
    *,
    key: Ed25519PrivateKey | None = None,
    kind: str = "run_started",
    prev: str = "",
) -> dict[str, Any]:
    """What the log says about who started or resumed a run (no name, only commitments); with
    the operator's reviewer `key`, its fingerprint and a signature proving they held it."""
    if key is not None:
        fingerprint = fingerprint_of(raw_public_key(key.public_key()))
        proof = key.sign(operator_proof_message(origin, kind, prev)).hex()
        return {
            "commitment": operator_commitment(origin, name),
            "reviewer_key": fingerprint,
            "proof": proof,
        }
    known = None
    if registry is not None:
        found = next((r for r in registry.reviewers if r.name == name), None)
        known = found.fingerprint if found is not None else None
    return {"commitment": operator_commitment(origin, name), "reviewer_key": known}


def queue_from_entries(entries: Iterable[AuditEntry]) -> dict[str, QueuedProposal]:
    """Every proposal that was ever sent to review, with its current status (each entry is
    read as its typed event: one that does not fit the schema raises `AuditError`)."""
    queue: dict[str, QueuedProposal] = {}
    for entry in entries:
        p = parse_event(entry).payload
        if isinstance(p, UpdatePending):
            queue[p.proposal_id] = QueuedProposal(
                proposal_id=p.proposal_id,
                cycle=p.cycle,
                base_sha256=p.base_sha256,
                candidate_sha256=p.candidate_sha256,
                checkpoint_id=p.checkpoint_id,
                created=entry.ts,
                expires_at=expiry_of(entry.ts, p.expiry_hours),
                approvals_required=p.approvals_required,
                rule=p.rule,
                reasons=list(p.reasons),
            )
            continue
        pid = getattr(p, "proposal_id", None)
        if pid not in queue:
            continue
        if isinstance(p, ReviewDecision):
            queue[pid].decisions.append(entry.payload)
            if p.decision.body.decision == "approve":
                queue[pid].approvals.append(p.decision.body.reviewer)
        elif isinstance(p, UpdateApplied):
            queue[pid].status = "applied"
        elif isinstance(p, UpdateRejected):
            queue[pid].status = {"expired": "expired", "superseded": "superseded"}.get(
                p.rule, "rejected"
            )
            queue[pid].closed_because = "; ".join(p.reasons)
    return queue


def operators_of(entries: Iterable[AuditEntry]) -> Operators:
    commitments, fingerprints = set(), set()
    claims: list[tuple[str, str, str, str]] = []
    unbound = 0
    for entry in entries:
        start = parse_event(entry).payload if entry.type in ("run_started", "run_resumed") else None
        if isinstance(start, RunStarted | RunResumed):
            record = start.operator
            if record is not None:
                commitments.add(record.commitment)
            if record is not None and record.reviewer_key:
                fingerprints.add(record.reviewer_key)
            if record is not None and record.reviewer_key and record.proof:
                claims.append((record.reviewer_key, record.proof, entry.type, entry.prev))
            else:
                unbound += 1  # a name (and a fingerprint looked up by it) proves nothing
    return Operators(frozenset(commitments), frozenset(fingerprints), tuple(claims), unbound)


def check_decision(
    signed: SignedDecision,
    *,
    origin: str,
    queue: dict[str, QueuedProposal],
    registry: Registry | None,
    policy: GatePolicy,
    operators: Operators,
    live_sha256: str,
    now: float,
) -> tuple[QueuedProposal, Reviewer]:
    """Everything a decision must satisfy before it counts; the first failure raises."""
    body = signed.body
    if registry is None:
        raise no_reviewers()
    if body.origin != origin:
        raise ReviewError(
            "the decision was made for another run",
            field="origin",
            got=body.origin,
            expected=origin,
        )
    proposal = queued(queue, body.proposal_id)
    if not signed.signature_valid():
        raise ReviewError(
            "the decision's signature does not verify (changed after signing, or not signed "
            "by the key it names)",
            field="signature",
            expected="a decision exactly as `guarded-rl review` signed it",
        )
    reviewer = registry.by_fingerprint(body.reviewer)
    if reviewer is None or reviewer.public_key != signed.public_key:
        raise ReviewError(
            "the decision is signed by a key that is not a registered reviewer's",
            file=str(registry.path),
            field="reviewer",
            got=body.reviewer,
            expected="a key listed in the reviewers file",
        )
    if reviewer.role not in policy.reviewer_roles:
        raise ReviewError(
            "this reviewer's role may not decide on updates",
            field="role",
            got=reviewer.role,
            expected=f"one of {policy.reviewer_roles} (gate.reviewer_roles)",
        )
    if body.candidate_sha256 != proposal.candidate_sha256:
        raise ReviewError(
            "the decision names other candidate weights than the proposal",
            field="candidate_sha256",
            got=body.candidate_sha256[:12],
            expected=proposal.candidate_sha256[:12],
        )
    if proposal.status != "pending":
        raise ReviewError(
            f"proposal {proposal.proposal_id} was already decided: {proposal.status}",
            field="ID",
            got=proposal.proposal_id,
            expected="a pending proposal",
        )
    if body.time >= proposal.expires_at or now >= proposal.expires_at:
        raise ReviewError(
            f"proposal {proposal.proposal_id} expired at {iso_time(proposal.expires_at)}",
            field="ID",
            got=proposal.proposal_id,
            expected="a proposal within gate.review_expiry_hours of being made",
        )
    if body.time > now + CLOCK_SKEW_SECONDS or body.time < proposal.created - CLOCK_SKEW_SECONDS:
        raise ReviewError(
            "the decision's time is outside the proposal's life",
            field="time",
            got=iso_time(body.time),
            expected=f"between {iso_time(proposal.created)} and now",
        )
    if proposal.base_sha256 != live_sha256:
        raise ReviewError(
            f"proposal {proposal.proposal_id} was made from weights that are no longer live "
            "(another update or a rollback came first)",
            field="ID",
            got=proposal.proposal_id,
            expected="a proposal made from the live weights",
        )
    if body.decision == "approve":
        unproven = operators.unproven(origin, registry) if policy.four_eyes else None
        if unproven is not None:
            raise ReviewError(
                unproven,
                field="--reviewer",
                got=reviewer.name,
                expected="a run started and resumed with --operator-key (four-eyes)",
            )
        if policy.four_eyes and operators.includes(origin, reviewer):
            raise ReviewError(
                "the operator of this run cannot approve its updates (four-eyes)",
                field="--reviewer",
                got=reviewer.name,
                expected="a reviewer who did not start or resume this run",
            )
        if reviewer.fingerprint in proposal.approvals:
            raise ReviewError(
                f"{reviewer.name} already approved {proposal.proposal_id}; one reviewer counts "
                "once",
                field="--reviewer",
                got=reviewer.name,
                expected="a reviewer who has not approved it yet",
            )
    check_note(body.note)
    return proposal, reviewer


def no_reviewers() -> ReviewError:
    return ReviewError(
        "the run's policy names no reviewers file, so nobody can decide",
        field="gate.reviewers",
        expected="a reviewers file in the policy (or `run --reviewers FILE`)",
    )


def queued(queue: dict[str, QueuedProposal], proposal_id: str) -> QueuedProposal:
    """The proposal with this id, or an error listing the pending ones."""
    proposal = queue.get(proposal_id)
    if proposal is None:
        pending = [p.proposal_id for p in queue.values() if p.status == "pending"]
        raise ReviewError(
            "no such proposal in this run's review queue",
            field="ID",
            got=proposal_id,
            expected=f"a pending proposal: {first_few(pending)}" if pending else "none pending",
        )
    return proposal


def check_note(note: str) -> None:
    """Notes go into the audit log, which holds no personal data."""
    from guarded_rl.safety.pii import find_pii

    found = find_pii(note)
    if found:
        raise ReviewError(
            "the note contains personal data, and the audit log keeps none",
            field="--note",
            got=found[0].kind,
            expected="a note without contact details, ids or secrets",
        )


class ReviewDesk:
    """Writes review outcomes to a run's log: decisions, approvals, rejections, expiries.

    `apply(proposal, record_approval)` checks the stored candidate, calls `record_approval`
    (the `update_approved` entry), makes it live and records `update_applied`: the live loop
    installs the weights, the review command (no live run) records them for resume.
    """

    def __init__(
        self,
        *,
        append: Callable[[str, dict[str, Any]], Any],
        origin: str,
        policy: GatePolicy,
        queue: dict[str, QueuedProposal],
        operators: Operators,
        live_sha256: str,
        apply: Callable[[QueuedProposal, Callable[[], None]], None],
        clock: Callable[[], float] = time.time,
        verify: Callable[[QueuedProposal], None] | None = None,
    ) -> None:
        """`verify(proposal)` raises when the stored candidate cannot be applied; it runs
        before the approval that would apply it is recorded."""
        self._append = append
        self._verify = verify
        self.origin = origin
        self.policy = policy
        self.queue = queue
        self.operators = operators
        self.live_sha256 = live_sha256
        self._apply = apply
        self.clock = clock

    @property
    def pending(self) -> list[QueuedProposal]:
        return [p for p in self.queue.values() if p.status == "pending"]

    def registry(self) -> Registry | None:
        """The reviewers file as it is now (reviewers may be added or removed mid-run)."""
        return load_registry(self.policy.reviewers) if self.policy.reviewers else None

    def enqueue(self, payload: dict[str, Any], created: float) -> QueuedProposal:
        """Follow a proposal the loop just sent to review (its `update_pending` entry)."""
        proposal = QueuedProposal(
            proposal_id=payload["proposal_id"],
            cycle=payload["cycle"],
            base_sha256=payload["base_sha256"],
            candidate_sha256=payload["candidate_sha256"],
            checkpoint_id=payload["checkpoint_id"],
            created=created,
            expires_at=expiry_of(created, payload["expiry_hours"]),
            approvals_required=payload["approvals_required"],
            rule=payload["rule"],
            reasons=list(payload["reasons"]),
        )
        self.queue[proposal.proposal_id] = proposal
        return proposal

    def record(self, signed: SignedDecision, registry: Registry | None = None) -> str:
        """Check a decision, record it, and apply or reject the proposal when it settles it."""
        registry = registry if registry is not None else self.registry()
        proposal, reviewer = check_decision(
            signed,
            origin=self.origin,
            queue=self.queue,
            registry=registry,
            policy=self.policy,
            operators=self.operators,
            live_sha256=self.live_sha256,
            now=self.clock(),
        )
        approve = signed.body.decision == "approve"
        count = len(proposal.approvals) + (1 if approve else 0)
        if approve and count >= proposal.approvals_required and self._verify is not None:
            self._verify(proposal)  # a candidate that cannot be applied: nothing is recorded
        payload = {
            "cycle": proposal.cycle,
            "proposal_id": proposal.proposal_id,
            "decision": signed.model_dump(),
            "role": reviewer.role,
            "reviewers_sha256": registry.sha256 if registry else None,
            "approvals": count,
            "approvals_required": proposal.approvals_required,
        }
        self._append("review_decision", payload)
        proposal.decisions.append(payload)
        if not approve:
            self._close(
                proposal,
                "rejected",
                "reviewer_rejected",
                [f"rejected by reviewer {reviewer.fingerprint}"],
            )
            return "rejected"
        proposal.approvals.append(reviewer.fingerprint)
        if count < proposal.approvals_required:
            return f"approved {count} of {proposal.approvals_required}"

        def record_approval() -> None:
            self._append(
                "update_approved",
                {
                    "cycle": proposal.cycle,
                    "proposal_id": proposal.proposal_id,
                    "rule": "human_review",
                    "approver": "reviewers",
                    "approvals": list(proposal.approvals),
                    "reasons": [f"{count} of {proposal.approvals_required} required approvals"],
                },
            )

        proposal.status = "applying"  # not pending: applying it must not supersede it
        try:
            self._apply(proposal, record_approval)
        except BaseException:
            proposal.status = "pending"
            raise
        proposal.status = "applied"
        self.live_sha256 = proposal.candidate_sha256
        self.supersede()
        return "applied"

    def expire(self) -> list[QueuedProposal]:
        """Reject the proposals whose review time has run out."""
        now = self.clock()
        expired = [p for p in self.pending if now >= p.expires_at]
        for p in expired:
            self._close(p, "expired", "expired", [f"no decision by {iso_time(p.expires_at)}"])
        return expired

    def supersede(self) -> list[QueuedProposal]:
        """Reject the proposals made from weights that are no longer live."""
        stale = [p for p in self.pending if p.base_sha256 != self.live_sha256]
        for p in stale:
            self._close(
                p,
                "superseded",
                "superseded",
                [f"made from {p.base_sha256[:12]}, live is now {self.live_sha256[:12]}"],
            )
        return stale

    def ingest(self, run_dir: Path) -> list[str]:
        """Settle the decisions waiting in the inbox; refused ones move to `review/refused/`
        with the reason next to them. Returns one line per decision."""
        inbox = Path(run_dir) / INBOX
        if not inbox.is_dir():
            return []
        lines = []
        registry = None
        for path in sorted(inbox.glob("*.json")):
            try:
                signed = SignedDecision.model_validate_json(read_small_file(path))
                if registry is None:
                    registry = self.registry()
                outcome = self.record(signed, registry)
            except (ValidationError, GuardedRLError, ValueError) as exc:
                # fail closed without stopping the loop: a decision that cannot be checked
                # (unreadable reviewers file, candidate missing from the store) does not count
                reason = exc.one_line() if isinstance(exc, GuardedRLError) else "not a decision"
                reason = _cut(reason)
                _quarantine(Path(run_dir), path, reason)
                lines.append(f"{path.name}: refused: {reason}")
                continue
            path.unlink()
            lines.append(f"{signed.body.proposal_id}: {outcome}")
        return lines

    def _close(self, proposal: QueuedProposal, status: str, rule: str, reasons: list[str]) -> None:
        self._append(
            "update_rejected",
            {
                "cycle": proposal.cycle,
                "proposal_id": proposal.proposal_id,
                "rule": rule,
                "reasons": reasons,
            },
        )
        proposal.status = status
        proposal.closed_because = "; ".join(reasons)


def stored_candidate_verifier(checkpoints: Any) -> Callable[[QueuedProposal], None]:
    """Checks that a proposal's candidate is in the checkpoint store (a `CheckpointStore`),
    unchanged, with optimizer state: what applying it needs."""

    def verify(proposal: QueuedProposal) -> None:
        from guarded_rl.errors import AuditError, IntegrityError

        try:
            checkpoints.verify(proposal.checkpoint_id)
            manifest = checkpoints.manifest(proposal.checkpoint_id)
        except AuditError as exc:
            raise IntegrityError(
                f"the stored candidate of {proposal.proposal_id} cannot be read: {exc.message}",
                file=exc.file,
            ) from None
        if manifest["model_sha256"] != proposal.candidate_sha256 or manifest["optimizer"] is None:
            raise IntegrityError(
                "the stored candidate is not the proposal's weights",
                field="checkpoint_id",
                got=proposal.checkpoint_id[:12],
                expected=f"weights {proposal.candidate_sha256[:12]} with optimizer state",
            )

    return verify


def drop_in_inbox(run_dir: Path, signed: SignedDecision) -> Path:
    """Leave a checked decision for the live run (atomic: the loop never sees half a file)."""
    body = signed.body
    name = f"{time.time_ns()}-{body.proposal_id}-{body.reviewer}.json"
    path = Path(run_dir) / INBOX / name
    atomic_write(path, signed.model_dump_json().encode(), mode=0o600)
    return path


def refused_decisions(run_dir: Path) -> list[tuple[str, str]]:
    """(file name, reason) of the decisions a live run refused (for `review list`)."""
    found = []
    for path in sorted((Path(run_dir) / REFUSED).glob("*.json")):
        try:
            raw = read_small_file(path.with_suffix(".reason"), limit=REASON_LIMIT * 4)
            reason = _cut(raw.decode("utf-8", errors="replace").strip())
        except ReviewError:
            reason = "?"
        found.append((path.name, reason))
    return found


def queued_decisions(run_dir: Path) -> list[SignedDecision]:
    """Decisions waiting in the inbox (for `review list`); anything else there (unreadable,
    a link, a FIFO, too large) is skipped: the run refuses and moves it aside when it settles."""
    found = []
    for path in sorted((Path(run_dir) / INBOX).glob("*.json")):
        try:
            found.append(SignedDecision.model_validate_json(read_small_file(path)))
        except (ValidationError, ReviewError, ValueError):
            continue
    return found


def _cut(text: str, limit: int = REASON_LIMIT) -> str:
    """A reason that may quote a hostile file's content, cut to one short line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quarantine(run_dir: Path, path: Path, reason: str) -> None:
    """Move a refused inbox entry (a file, link, FIFO or directory) aside, once."""
    target = run_dir / REFUSED / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():  # never over an earlier refusal
        target = target.with_name(f"{time.time_ns()}-{path.name}")
    os.rename(path, target)  # moves the entry itself, never what a link points at
    atomic_write(target.with_suffix(".reason"), (reason + "\n").encode())


__all__ = [
    "Operators",
    "QueuedProposal",
    "ReviewDesk",
    "check_decision",
    "drop_in_inbox",
    "operator_commitment",
    "operator_record",
    "operators_of",
    "proposal_id_of",
    "queue_from_entries",
    "queued_decisions",
]

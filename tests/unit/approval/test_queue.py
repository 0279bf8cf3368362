"""The review desk: what a signed decision records, and that a refused one records nothing.

Real Ed25519 keys and a real reviewers file; the log is a list collecting `(type, payload)`
so every test can state the exact entries written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from guarded_rl.approval.decision import SignedDecision, sign_decision
from guarded_rl.approval.queue import (
    Operators,
    QueuedProposal,
    ReviewDesk,
    drop_in_inbox,
    operator_commitment,
    operator_record,
    operators_of,
    queue_from_entries,
    queued_decisions,
)
from guarded_rl.approval.reviewers import (
    Registry,
    ReviewError,
    create_reviewer_key,
    load_registry,
    load_reviewer_key,
)
from guarded_rl.audit.log import GENESIS, AuditEntry, AuditLog, read_log
from guarded_rl.policy import GatePolicy
from guarded_rl.rundir.paths import INBOX, REFUSED

ORIGIN = "guarded-rl/run-1"
BASE = "b" * 64
OTHER_LIVE = "e" * 64
T0 = 1_700_000_000.0
HOUR = 3600.0

Log = list[tuple[str, dict[str, Any]]]


def _candidate(cycle: int) -> str:
    return f"{cycle + 0xC0FFEE:064x}"


def _payload(
    cycle: int,
    *,
    base: str = BASE,
    required: int = 1,
    expires_at: float = T0 + HOUR,
    created: float = T0,
) -> dict[str, Any]:
    """An `update_pending` payload as `Guard._queue_for_review` writes it."""
    return {
        "cycle": cycle,
        "rule": "needs_review",
        "reasons": ["probe KL 0.2000 is over 0.01"],
        "proposal_id": f"u{cycle}",
        "base_sha256": base,
        "candidate_sha256": _candidate(cycle),
        "checkpoint_id": f"{cycle + 0xC4EC:064x}",
        "with_optimizer": True,
        "approvals_required": required,
        "expiry_hours": (expires_at - created) / 3600,
    }


@dataclass
class Clock:
    now: float = T0 + 120

    def __call__(self) -> float:
        return self.now


@dataclass
class People:
    reviewers: Path
    keys: dict[str, Ed25519PrivateKey]

    @property
    def registry(self) -> Registry:
        return load_registry(self.reviewers)

    def fingerprint(self, name: str) -> str:
        return self.registry.by_name(name).fingerprint


@dataclass
class Harness:
    desk: ReviewDesk
    log: Log
    clock: Clock
    applied: list[str] = field(default_factory=list)
    created: float = T0

    def propose(self, cycle: int, **kwargs: Any) -> QueuedProposal:
        payload = _payload(cycle, created=self.created, **kwargs)
        self.log.append(("update_pending", payload))
        return self.desk.enqueue(payload, created=self.created)

    def types(self, since: int = 0) -> list[str]:
        return [t for t, _ in self.log[since:]]

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [p for t, p in self.log if t == type_]

    def status(self, pid: str) -> str:
        return self.desk.queue[pid].status


@pytest.fixture
def people(tmp_path: Path) -> People:
    reviewers = tmp_path / "reviewers.toml"
    roles = {"alice": "reviewer", "bob": "reviewer", "carol": "auditor"}
    for name, role in roles.items():
        create_reviewer_key(name, role, tmp_path / "keys" / f"{name}.pem", reviewers)
    keys = {name: load_reviewer_key(tmp_path / "keys" / f"{name}.pem") for name in roles}
    keys["mallory"] = Ed25519PrivateKey.generate()  # not in the reviewers file
    return People(reviewers, keys)


def _harness(
    people: People,
    *,
    required: int = 1,
    four_eyes: bool = True,
    roles: tuple[str, ...] = ("reviewer",),
    operators: Operators = Operators(),  # noqa: B008 (frozen, never mutated)
    reviewers: bool = True,
    apply: Callable[[Harness], Callable[[QueuedProposal, Callable[[], None]], None]] | None = None,
    log: Log | None = None,
    append: Callable[[str, dict[str, Any]], Any] | None = None,
    start: float = T0 + 120,
) -> Harness:
    log = [] if log is None else log
    policy = GatePolicy(
        reviewers=str(people.reviewers) if reviewers else None,
        approvals_required=required,
        four_eyes=four_eyes,
        reviewer_roles=list(roles),
    )
    clock = Clock(start)
    holder: list[Harness] = []

    def default_apply(proposal: QueuedProposal, record_approval: Callable[[], None]) -> None:
        record_approval()
        log.append(
            (
                "update_applied",
                {
                    "cycle": proposal.cycle,
                    "proposal_id": proposal.proposal_id,
                    "model_sha256": proposal.candidate_sha256,
                },
            )
        )
        holder[0].applied.append(proposal.proposal_id)

    desk = ReviewDesk(
        append=append or (lambda t, p: log.append((t, p))),
        origin=ORIGIN,
        policy=policy,
        queue={},
        operators=operators,
        live_sha256=BASE,
        apply=lambda p, r: (apply(holder[0]) if apply else default_apply)(p, r),
        clock=clock,
    )
    holder.append(Harness(desk, log, clock))
    return holder[0]


def _decide(
    key: Ed25519PrivateKey,
    proposal: QueuedProposal | str,
    decision: str = "approve",
    *,
    note: str = "checked the probe outputs",
    now: float = T0 + 60,
    origin: str = ORIGIN,
    candidate: str | None = None,
) -> SignedDecision:
    pid = proposal if isinstance(proposal, str) else proposal.proposal_id
    if candidate is None:
        candidate = _candidate(int(pid[1:]))
    return sign_decision(
        key,
        origin=origin,
        proposal_id=pid,
        candidate_sha256=candidate,
        decision=decision,  # type: ignore[arg-type]
        note=note,
        now=now,
    )


def _refused(h: Harness, signed: SignedDecision, match: str) -> ReviewError:
    """The decision raises, and nothing at all was written or changed."""
    pid = signed.body.proposal_id
    before_log, before_live, applied = list(h.log), h.desk.live_sha256, list(h.applied)
    before = h.desk.queue[pid].status if pid in h.desk.queue else None
    approvals = list(h.desk.queue[pid].approvals) if pid in h.desk.queue else None
    with pytest.raises(ReviewError, match=match) as info:
        h.desk.record(signed)
    assert h.log == before_log
    assert h.applied == applied
    assert h.desk.live_sha256 == before_live
    if pid in h.desk.queue:
        assert h.desk.queue[pid].status == before
        assert h.desk.queue[pid].approvals == approvals
    return info.value


def _entries(log: Log, ts: float = T0) -> list[AuditEntry]:
    return [AuditEntry(i, ts, t, p, GENESIS, GENESIS) for i, (t, p) in enumerate(log)]


# --- accepted decisions --------------------------------------------------------------------


def test_one_approval_applies(people: People) -> None:
    h = _harness(people)
    u3 = h.propose(3)
    signed = _decide(people.keys["alice"], u3)

    assert h.desk.record(signed) == "applied"

    assert h.types() == ["update_pending", "review_decision", "update_approved", "update_applied"]
    decision = h.of_type("review_decision")[0]
    assert decision == {
        "cycle": 3,
        "proposal_id": "u3",
        "decision": signed.model_dump(),
        "role": "reviewer",
        "reviewers_sha256": people.registry.sha256,
        "approvals": 1,
        "approvals_required": 1,
    }
    approved = h.of_type("update_approved")[0]
    assert approved["proposal_id"] == "u3"
    assert approved["rule"] == "human_review"
    assert approved["approvals"] == [people.fingerprint("alice")]
    assert h.applied == ["u3"]
    assert h.status("u3") == "applied"
    assert u3.approvals == [people.fingerprint("alice")]
    assert h.desk.live_sha256 == _candidate(3)
    assert h.desk.pending == []


def test_applying_supersedes_other_proposals_from_the_same_base(people: People) -> None:
    h = _harness(people)
    h.propose(3)
    h.propose(4)
    h.desk.record(_decide(people.keys["alice"], "u3"))

    assert h.types()[2:] == [
        "review_decision",
        "update_approved",
        "update_applied",
        "update_rejected",
    ]
    closed = h.of_type("update_rejected")[0]
    assert closed["proposal_id"] == "u4"
    assert closed["rule"] == "superseded"
    assert (h.status("u3"), h.status("u4")) == ("applied", "superseded")
    # the superseded one can no longer be decided
    _refused(h, _decide(people.keys["bob"], "u4"), "already decided: superseded")


def test_two_approvals_required(people: People) -> None:
    h = _harness(people, required=2)
    u3 = h.propose(3, required=2)

    assert h.desk.record(_decide(people.keys["alice"], u3)) == "approved 1 of 2"
    assert h.types(1) == ["review_decision"]
    assert h.of_type("review_decision")[0]["approvals"] == 1
    assert h.status("u3") == "pending"
    assert h.applied == []

    _refused(h, _decide(people.keys["alice"], u3, now=T0 + 90), "counts once")

    assert h.desk.record(_decide(people.keys["bob"], u3)) == "applied"
    assert h.types(1) == ["review_decision", "review_decision", "update_approved", "update_applied"]
    assert h.of_type("review_decision")[1]["approvals"] == 2
    approvals = [people.fingerprint("alice"), people.fingerprint("bob")]
    assert h.of_type("update_approved")[0]["approvals"] == approvals
    assert u3.approvals == approvals
    assert h.status("u3") == "applied"


def test_reject_closes_the_proposal(people: People) -> None:
    h = _harness(people)
    h.propose(3)

    assert h.desk.record(_decide(people.keys["bob"], "u3", "reject")) == "rejected"

    assert h.types(1) == ["review_decision", "update_rejected"]
    rejected = h.of_type("update_rejected")[0]
    assert rejected["rule"] == "reviewer_rejected"
    assert rejected["proposal_id"] == "u3"
    assert people.fingerprint("bob") in rejected["reasons"][0]
    assert h.status("u3") == "rejected"
    assert h.desk.queue["u3"].approvals == []
    assert h.desk.live_sha256 == BASE

    _refused(h, _decide(people.keys["alice"], "u3"), "already decided: rejected")


def test_reject_after_one_of_two_approvals(people: People) -> None:
    h = _harness(people, required=2)
    h.propose(3, required=2)
    h.desk.record(_decide(people.keys["alice"], "u3"))
    assert h.desk.record(_decide(people.keys["bob"], "u3", "reject")) == "rejected"
    assert h.types(1) == ["review_decision", "review_decision", "update_rejected"]
    assert h.applied == []


def test_another_role_accepted_when_the_policy_lists_it(people: People) -> None:
    h = _harness(people, roles=("reviewer", "auditor"))
    h.propose(3)
    assert h.desk.record(_decide(people.keys["carol"], "u3")) == "applied"
    assert h.of_type("review_decision")[0]["role"] == "auditor"


# --- refused decisions: each raises and writes nothing ---------------------------------------


def test_unknown_proposal(people: People) -> None:
    h = _harness(people)
    h.propose(3)
    err = _refused(h, _decide(people.keys["alice"], "u9"), "no such proposal")
    assert "u3" in err.one_line()


def test_decision_for_another_run(people: People) -> None:
    h = _harness(people)
    h.propose(3)
    _refused(h, _decide(people.keys["alice"], "u3", origin="guarded-rl/run-2"), "another run")


def test_unregistered_key(people: People) -> None:
    h = _harness(people)
    h.propose(3)
    _refused(h, _decide(people.keys["mallory"], "u3"), "not a registered reviewer")


def test_removed_reviewer_is_refused_mid_run(people: People) -> None:
    """The registry is re-read per decision: removing a reviewer takes effect at once."""
    h = _harness(people)
    h.propose(3)
    text = people.reviewers.read_text()
    alice_entry = text[: text.index("[[reviewer]]", text.index("[[reviewer]]") + 1)]
    people.reviewers.write_text(text.replace(alice_entry, ""))
    _refused(h, _decide(people.keys["alice"], "u3"), "not a registered reviewer")


def test_role_not_allowed(people: People) -> None:
    h = _harness(people)
    h.propose(3)
    _refused(h, _decide(people.keys["carol"], "u3"), "role may not decide")


def test_tampered_note(people: People) -> None:
    h = _harness(people)
    h.propose(3)
    signed = _decide(people.keys["alice"], "u3", note="ok")
    tampered = signed.model_copy(
        update={"body": signed.body.model_copy(update={"note": "ok, and approved by the CTO"})}
    )
    _refused(h, tampered, "signature does not verify")


def test_other_candidate(people: People) -> None:
    h = _harness(people)
    h.propose(3)
    _refused(h, _decide(people.keys["alice"], "u3", candidate=_candidate(4)), "other candidate")


def test_expired_by_the_clock(people: People) -> None:
    h = _harness(people)
    h.propose(3, expires_at=T0 + HOUR)
    h.clock.now = T0 + HOUR
    _refused(h, _decide(people.keys["alice"], "u3"), "expired at")


def test_expired_by_the_decision_time(people: People) -> None:
    h = _harness(people)
    h.propose(3, expires_at=T0 + 200)
    _refused(h, _decide(people.keys["alice"], "u3", now=T0 + 250), "expired at")


@pytest.mark.parametrize("signed_at", [T0 + 120 + 301, T0 - 301])
def test_decision_time_outside_the_proposal_life(people: People, signed_at: float) -> None:
    h = _harness(people)
    h.propose(3, expires_at=T0 + 10 * HOUR)
    _refused(h, _decide(people.keys["alice"], "u3", now=signed_at), "outside the proposal's life")


def test_stale_base(people: People) -> None:
    h = _harness(people)
    h.propose(3)
    h.desk.live_sha256 = OTHER_LIVE
    _refused(h, _decide(people.keys["alice"], "u3"), "no longer live")


def test_operator_cannot_approve_own_run(people: People) -> None:
    operators = Operators(commitments=frozenset({operator_commitment(ORIGIN, "alice")}))
    h = _harness(people, operators=operators)
    h.propose(3)
    _refused(h, _decide(people.keys["alice"], "u3"), "four-eyes")
    # bob did not operate the run
    assert h.desk.record(_decide(people.keys["bob"], "u3")) == "applied"


def test_operator_known_by_key_fingerprint_cannot_approve(people: People) -> None:
    h = _harness(people, operators=Operators(fingerprints=frozenset({people.fingerprint("alice")})))
    h.propose(3)
    _refused(h, _decide(people.keys["alice"], "u3"), "four-eyes")


def test_operator_commitment_of_another_run_does_not_count(people: People) -> None:
    operators = Operators(commitments=frozenset({operator_commitment("guarded-rl/run-2", "alice")}))
    h = _harness(people, operators=operators)
    h.propose(3)
    assert h.desk.record(_decide(people.keys["alice"], "u3")) == "applied"


def test_operator_may_approve_without_four_eyes(people: People) -> None:
    operators = Operators(commitments=frozenset({operator_commitment(ORIGIN, "alice")}))
    h = _harness(people, operators=operators, four_eyes=False)
    h.propose(3)
    assert h.desk.record(_decide(people.keys["alice"], "u3")) == "applied"


def test_operator_may_reject(people: People) -> None:
    operators = Operators(commitments=frozenset({operator_commitment(ORIGIN, "alice")}))
    h = _harness(people, operators=operators)
    h.propose(3)
    assert h.desk.record(_decide(people.keys["alice"], "u3", "reject")) == "rejected"
    assert h.types(1) == ["review_decision", "update_rejected"]


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_note_with_an_email_address(people: People, decision: str) -> None:
    h = _harness(people)
    h.propose(3)
    signed = _decide(people.keys["alice"], "u3", decision, note="ask jane.doe@example.com")
    err = _refused(h, signed, "personal data")
    assert err.got == "email"
    assert "jane" not in err.one_line()


def test_policy_without_reviewers(people: People) -> None:
    h = _harness(people, reviewers=False)
    h.propose(3)
    _refused(h, _decide(people.keys["alice"], "u3"), "names no reviewers file")


# --- expiry, replay from the log ------------------------------------------------------------


def test_expire_closes_only_overdue_proposals(people: People) -> None:
    h = _harness(people)
    h.propose(1, expires_at=T0 + 100)
    h.propose(2, expires_at=T0 + 500)
    h.propose(3, expires_at=T0 + 501)
    h.clock.now = T0 + 500

    assert [p.proposal_id for p in h.desk.expire()] == ["u1", "u2"]

    assert h.types(3) == ["update_rejected", "update_rejected"]
    assert [p["proposal_id"] for p in h.of_type("update_rejected")] == ["u1", "u2"]
    assert {p["rule"] for p in h.of_type("update_rejected")} == {"expired"}
    assert [h.status(f"u{i}") for i in (1, 2, 3)] == ["expired", "expired", "pending"]
    assert h.desk.expire() == []  # closed ones are not closed again
    assert len(h.log) == 5


def _scenario(h: Harness, people: People) -> None:
    """u1 rejected, u2 expired, u3 applied by two, u4 superseded, u5 half approved."""
    alice, bob = people.keys["alice"], people.keys["bob"]
    base_now = h.clock.now
    for cycle in (1, 2, 3, 4):
        h.propose(cycle, required=2, expires_at=base_now + (50 if cycle == 2 else HOUR))
    h.desk.record(_decide(bob, "u1", "reject", now=base_now))
    h.desk.record(_decide(alice, "u3", now=base_now))
    h.clock.now = base_now + 60
    h.desk.expire()
    h.desk.record(_decide(bob, "u3", now=base_now + 60))
    h.propose(5, base=_candidate(3), required=2, expires_at=base_now + HOUR)
    h.desk.record(_decide(alice, "u5", now=base_now + 60))


def test_queue_from_entries_reproduces_the_desk(people: People) -> None:
    h = _harness(people, required=2)
    _scenario(h, people)
    statuses = {pid: p.status for pid, p in h.desk.queue.items()}
    assert statuses == {
        "u1": "rejected",
        "u2": "expired",
        "u3": "applied",
        "u4": "superseded",
        "u5": "pending",
    }
    # auto-approved updates and unrelated entries do not disturb the queue
    h.log.insert(0, ("update_applied", {"cycle": 0, "model_sha256": BASE}))
    h.log.append(("update_rejected", {"cycle": 9, "rule": "reject_step_kl", "reasons": ["x"]}))

    replayed = queue_from_entries(_entries(h.log))

    assert replayed == h.desk.queue
    alice, bob = people.fingerprint("alice"), people.fingerprint("bob")
    assert replayed["u3"].approvals == [alice, bob]
    assert replayed["u5"].approvals == [alice]
    assert replayed["u1"].approvals == []
    assert len(replayed["u1"].decisions) == 1
    assert "rejected by reviewer" in replayed["u1"].closed_because


def test_queue_survives_a_real_audit_log(people: People, tmp_path: Path) -> None:
    """Through JSON and back: recorded decisions still verify, and the queue is the same."""
    start = round(time.time(), 3)
    with AuditLog(tmp_path / "audit.jsonl") as audit:
        h = _harness(people, required=2, append=audit.append, start=start)
        h.created = start
        entry = audit.append("update_pending", _payload(1, required=2, expires_at=start + HOUR))
        h.desk.enqueue(entry.payload, created=entry.ts)
        h.desk.record(_decide(people.keys["alice"], "u1", now=start))
        h.desk.record(_decide(people.keys["bob"], "u1", "reject", now=start))
    entries = read_log(tmp_path / "audit.jsonl")
    assert [e.type for e in entries] == [
        "update_pending",
        "review_decision",
        "review_decision",
        "update_rejected",
    ]
    replayed = queue_from_entries(entries)
    assert replayed == h.desk.queue
    for d in replayed["u1"].decisions:
        assert SignedDecision.model_validate(d["decision"]).signature_valid()


# --- the inbox ------------------------------------------------------------------------------


def test_ingest_records_valid_decisions_and_quarantines_the_rest(
    people: People, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    h = _harness(people)
    h.propose(3)
    valid = drop_in_inbox(run_dir, _decide(people.keys["alice"], "u3"))
    signed = _decide(people.keys["bob"], "u3", note="fine")
    tampered = drop_in_inbox(
        run_dir,
        signed.model_copy(update={"body": signed.body.model_copy(update={"note": "fine!"})}),
    )
    garbage = run_dir / INBOX / "garbage.json"
    garbage.write_bytes(b"{not json")
    (run_dir / INBOX / "notes.txt").write_text("not a decision file")
    assert len(queued_decisions(run_dir)) == 2  # the garbage is skipped

    lines = h.desk.ingest(run_dir)

    assert len(lines) == 3
    assert "u3: applied" in lines
    assert f"{garbage.name}: refused: not a decision" in lines
    assert any(line.startswith(f"{tampered.name}: refused:") for line in lines)
    assert h.types(1) == ["review_decision", "update_approved", "update_applied"]
    assert h.of_type("review_decision")[0]["decision"]["body"]["reviewer"] == (
        people.fingerprint("alice")
    )
    assert not valid.exists()
    assert sorted(p.name for p in (run_dir / INBOX).iterdir()) == ["notes.txt"]
    refused = run_dir / REFUSED
    assert (refused / garbage.name).read_bytes() == b"{not json"
    assert (refused / "garbage.reason").read_text() == "not a decision\n"
    assert (refused / tampered.name).exists()
    assert "signature" in (refused / tampered.with_suffix(".reason").name).read_text()


def test_ingest_refuses_only_what_fails(people: People, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    h = _harness(people)
    h.propose(3)
    drop_in_inbox(run_dir, _decide(people.keys["mallory"], "u3"))
    lines = h.desk.ingest(run_dir)
    assert len(lines) == 1 and "not a registered reviewer" in lines[0]
    assert h.types(1) == []
    assert h.status("u3") == "pending"
    assert [p.suffix for p in sorted((run_dir / REFUSED).iterdir())] == [".json", ".reason"]


def test_ingest_without_inbox(people: People, tmp_path: Path) -> None:
    assert _harness(people).desk.ingest(tmp_path / "run") == []


def test_dropped_decision_is_private_and_round_trips(people: People, tmp_path: Path) -> None:
    signed = _decide(people.keys["alice"], "u3")
    path = drop_in_inbox(tmp_path, signed)
    assert path.parent == tmp_path / INBOX
    assert path.stat().st_mode & 0o777 == 0o600
    assert queued_decisions(tmp_path) == [signed]


# --- operators ------------------------------------------------------------------------------


def _start(**fields: Any) -> dict[str, Any]:
    """A `run_started` payload (as the runner writes it) with these fields."""
    return {"run_id": "0123456789abcdef", "policy": {}, "base_sha256": BASE,
            "base_checkpoint_id": BASE, "versions": {}, "key_id": "0" * 16,
            "public_key": "-----BEGIN PUBLIC KEY-----\n"} | fields  # fmt: skip


def _resume(**fields: Any) -> dict[str, Any]:
    return {"from_cycle": 1, "cycles": 1, "live_sha256": BASE, "versions": {}} | fields


def test_operators_of_reads_start_and_resume_records(people: People) -> None:
    registry = people.registry
    log: Log = [
        ("run_started", _start(operator=operator_record(ORIGIN, "alice", registry))),
        ("update_applied", {"operator": operator_record(ORIGIN, "eve", registry)}),
        ("run_resumed", _resume(operator=operator_record(ORIGIN, "dave", registry))),
        ("run_resumed", _resume()),
        ("run_resumed", _resume(operator=operator_record(ORIGIN, "bob", None))),
    ]
    operators = operators_of(_entries(log))
    assert operators.commitments == {
        operator_commitment(ORIGIN, name) for name in ("alice", "dave", "bob")
    }
    assert operators.fingerprints == {people.fingerprint("alice")}  # dave is no reviewer
    assert operators.includes(ORIGIN, registry.by_name("alice"))
    assert operators.includes(ORIGIN, registry.by_name("bob"))
    assert not operators.includes(ORIGIN, registry.by_name("carol"))
    assert not operators.includes("guarded-rl/run-2", registry.by_name("bob"))


def _started_by(key: Ed25519PrivateKey, name: str, people: People, **change: str) -> Operators:
    record = operator_record(ORIGIN, name, people.registry, key=key, prev=GENESIS)
    started = _start(operator=record | change)
    return operators_of(_entries([("run_started", started)]))


def test_a_start_signed_with_the_operators_key_binds_them(people: People) -> None:
    operators = _started_by(people.keys["carol"], "carol", people)
    assert operators.unproven(ORIGIN, people.registry) is None
    h = _harness(people, operators=operators)
    h.propose(3)
    assert h.desk.record(_decide(people.keys["alice"], "u3")) == "applied"


def test_the_operators_own_key_cannot_approve(people: People) -> None:
    h = _harness(people, operators=_started_by(people.keys["alice"], "alice", people))
    h.propose(3)
    _refused(h, _decide(people.keys["alice"], "u3"), "four-eyes")


def test_a_start_that_only_names_its_operator_cannot_be_approved(people: People) -> None:
    """`--operator someone-else` proves nothing: alice could have started it herself."""
    log: Log = [("run_started", _start(operator=operator_record(ORIGIN, "someone-else", None)))]
    h = _harness(people, operators=operators_of(_entries(log)))
    h.propose(3)
    _refused(h, _decide(people.keys["alice"], "u3"), "named no operator key")


def test_a_forged_operator_proof_cannot_be_approved(people: People) -> None:
    """alice writes bob's fingerprint into the start with a proof she signed herself."""
    forged = _started_by(
        people.keys["alice"], "bob", people, reviewer_key=people.fingerprint("bob")
    )
    h = _harness(people, operators=forged)
    h.propose(3)
    _refused(h, _decide(people.keys["alice"], "u3"), "does not verify")


def test_an_operator_proof_of_another_place_in_the_log_does_not_count(people: People) -> None:
    carol = people.keys["carol"]
    record = operator_record(ORIGIN, "carol", people.registry, key=carol, prev="f" * 64)
    resumed = _entries([("run_resumed", _resume(operator=record))])
    h = _harness(people, operators=operators_of(resumed))
    h.propose(3)
    _refused(h, _decide(people.keys["alice"], "u3"), "does not verify")


def test_an_unregistered_operator_key_cannot_be_approved(people: People) -> None:
    h = _harness(people, operators=_started_by(people.keys["mallory"], "mallory", people))
    h.propose(3)
    _refused(h, _decide(people.keys["alice"], "u3"), "not in the reviewers file")


def test_operator_record_holds_no_name(people: People) -> None:
    record = operator_record(ORIGIN, "alice", people.registry)
    assert record == {
        "commitment": operator_commitment(ORIGIN, "alice"),
        "reviewer_key": people.fingerprint("alice"),
    }
    assert "alice" not in str(record)
    assert operator_commitment(ORIGIN, "alice") != operator_commitment(ORIGIN, "bob")


# --- known bug ------------------------------------------------------------------------------


def test_guard_like_apply_does_not_supersede_the_applied_proposal(people: People) -> None:
    """`Guard.apply_reviewed` ends in `Guard._applied`, which sets the desk's live weights and
    calls `desk.supersede()` before `record` marks the proposal applied."""

    def guard_apply(h: Harness) -> Callable[[QueuedProposal, Callable[[], None]], None]:
        def apply(proposal: QueuedProposal, record_approval: Callable[[], None]) -> None:
            record_approval()
            applied = {"cycle": proposal.cycle, "proposal_id": proposal.proposal_id,
                       "model_sha256": proposal.candidate_sha256}  # fmt: skip
            h.log.append(("update_applied", applied))
            h.desk.live_sha256 = proposal.candidate_sha256
            h.desk.supersede()

        return apply

    h = _harness(people, apply=guard_apply)
    h.propose(3)
    h.desk.record(_decide(people.keys["alice"], "u3"))
    assert h.types(1) == ["review_decision", "update_approved", "update_applied"]
    assert queue_from_entries(_entries(h.log))["u3"].status == "applied"

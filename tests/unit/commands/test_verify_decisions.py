"""`audit verify` checks reviewer signatures: whoever holds the run's log key can re-sign the
head, but cannot forge or alter a reviewer's approval."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from guarded_rl.approval.decision import SignedDecision, sign_decision
from guarded_rl.approval.queue import operator_record
from guarded_rl.approval.reviewers import create_reviewer_key, load_reviewer_key
from guarded_rl.audit.checkpoints import CheckpointStore
from guarded_rl.audit.head import key_id, public_key_pem, write_public_key
from guarded_rl.audit.log import GENESIS, AuditLog, entry_body
from guarded_rl.audit.signer import HeadSigner, origin_of
from guarded_rl.commands.verify import verify_run
from guarded_rl.rundir.paths import HEAD_FILE, PUBLIC_KEY_FILE

CANDIDATE = "c" * 64
RUN_ID = "0123456789abcdef"


def _run_with_decision(
    run_dir: Path,
    reviewers: Path,
    decision: dict[str, Any],
    *,
    origin_run: str = RUN_ID,
    operator_key: Path | None = None,
) -> None:
    """A minimal run directory: start, one pending proposal, one decision, a signed head;
    with `operator_key`, a four-eyes run started by that key's holder."""
    run_dir.mkdir()
    key = Ed25519PrivateKey.generate()
    write_public_key(run_dir / PUBLIC_KEY_FILE, key.public_key())
    gate: dict[str, Any] = {"reviewers": str(reviewers)}
    checkpoint = CheckpointStore(run_dir / "checkpoints").save({"w": torch.zeros(2)}, {})
    started = _started(key, origin_run, gate, checkpoint)
    if operator_key is not None:
        gate["four_eyes"] = True
        started["operator"] = operator_record(
            origin_of(origin_run), "op", None, key=load_reviewer_key(operator_key), prev=GENESIS
        )
    pending = {"cycle": 0, "proposal_id": "u0", "rule": "needs_review", "reasons": [],
               "base_sha256": "b" * 64, "candidate_sha256": CANDIDATE, "checkpoint_id": checkpoint,
               "with_optimizer": True, "approvals_required": 1, "expiry_hours": 72.0}  # fmt: skip
    review = {"cycle": 0, "proposal_id": "u0", "decision": decision, "role": "reviewer",
              "reviewers_sha256": None, "approvals": 1, "approvals_required": 1}  # fmt: skip
    # written as the holder of the log key could (AuditLog itself refuses a malformed entry)
    _write_raw(
        run_dir / "audit.jsonl",
        [("run_started", started), ("update_pending", pending), ("review_decision", review)],
    )
    log = AuditLog(run_dir / "audit.jsonl")
    HeadSigner(log, key, origin_of(origin_run), run_dir / HEAD_FILE).sign()
    log.close()


def _started(
    key: Ed25519PrivateKey, run_id: str, gate: dict[str, Any], checkpoint: str
) -> dict[str, Any]:
    return {"run_id": run_id, "policy": {"gate": gate}, "base_sha256": "b" * 64,
            "base_checkpoint_id": checkpoint, "versions": {},
            "public_key": public_key_pem(key.public_key()),
            "key_id": key_id(key.public_key())}  # fmt: skip


def _write_raw(path: Path, entries: list[tuple[str, dict[str, Any]]]) -> None:
    """Hash-chained lines without the writer's schema check."""
    prev, lines = GENESIS, []
    for seq, (type_, payload) in enumerate(entries):
        body = entry_body(seq, 1.0 + seq, type_, payload, prev)
        prev = hashlib.sha256(body).hexdigest()
        lines.append(b'{"hash":"' + prev.encode() + b'",' + body[1:] + b"\n")
    path.write_bytes(b"".join(lines))


def _signed(reviewer_key: Path, **changes: Any) -> SignedDecision:
    fields = {
        "origin": origin_of(RUN_ID),
        "proposal_id": "u0",
        "candidate_sha256": CANDIDATE,
        "decision": "approve",
        "note": "fine",
    } | changes
    return sign_decision(load_reviewer_key(reviewer_key), **fields)


def test_genuine_decision_verifies_and_is_counted(tmp_path: Path) -> None:
    create_reviewer_key("bob", "reviewer", tmp_path / "bob.key", tmp_path / "r.toml")
    _run_with_decision(
        tmp_path / "run", tmp_path / "r.toml", _signed(tmp_path / "bob.key").model_dump()
    )
    report = verify_run(tmp_path / "run")
    assert report.ok, report.failure
    assert report.decisions == 1 and report.notes == []


def test_altered_decision_fails_even_with_a_freshly_signed_head(tmp_path: Path) -> None:
    create_reviewer_key("bob", "reviewer", tmp_path / "bob.key", tmp_path / "r.toml")
    signed = _signed(tmp_path / "bob.key", decision="reject").model_dump()
    signed["body"]["decision"] = "approve"
    _run_with_decision(tmp_path / "run", tmp_path / "r.toml", signed)
    report = verify_run(tmp_path / "run")
    assert not report.ok
    assert report.failure == "seq 2: reviewer decision's signature does not verify"


def test_decision_moved_from_another_run_or_candidate_fails(tmp_path: Path) -> None:
    create_reviewer_key("bob", "reviewer", tmp_path / "bob.key", tmp_path / "r.toml")
    other_run = _signed(tmp_path / "bob.key", origin=origin_of("ffffffffffffffff"))
    _run_with_decision(tmp_path / "a", tmp_path / "r.toml", other_run.model_dump())
    other_candidate = _signed(tmp_path / "bob.key", candidate_sha256="d" * 64)
    _run_with_decision(tmp_path / "b", tmp_path / "r.toml", other_candidate.model_dump())
    for name in ("a", "b"):
        report = verify_run(tmp_path / name)
        assert report.failure == "seq 2: reviewer decision was signed for another run or candidate"


def test_a_signer_no_longer_in_the_reviewers_file_is_noted(tmp_path: Path) -> None:
    create_reviewer_key("bob", "reviewer", tmp_path / "bob.key", tmp_path / "old.toml")
    create_reviewer_key("eve", "reviewer", tmp_path / "eve.key", tmp_path / "now.toml")
    _run_with_decision(
        tmp_path / "run", tmp_path / "now.toml", _signed(tmp_path / "bob.key").model_dump()
    )
    report = verify_run(tmp_path / "run")
    assert report.ok and report.decisions == 1
    [note] = report.notes
    assert note.startswith(f"decisions by keys not in {tmp_path / 'now.toml'} now: rk-")


def test_malformed_decision_fails(tmp_path: Path) -> None:
    create_reviewer_key("bob", "reviewer", tmp_path / "bob.key", tmp_path / "r.toml")
    broken = _signed(tmp_path / "bob.key").model_dump()
    broken["extra"] = 1
    _run_with_decision(tmp_path / "run", tmp_path / "r.toml", broken)
    assert verify_run(tmp_path / "run").failure == "seq 2: reviewer decision is malformed"


def _four_eyes_people(tmp_path: Path) -> Path:
    create_reviewer_key("bob", "reviewer", tmp_path / "bob.key", tmp_path / "r.toml")
    create_reviewer_key("olivia", "operator", tmp_path / "olivia.key", tmp_path / "r.toml")
    return tmp_path / "r.toml"


def test_four_eyes_approval_by_another_person_than_the_operator_verifies(tmp_path: Path) -> None:
    people = _four_eyes_people(tmp_path)
    approval = _signed(tmp_path / "bob.key").model_dump()
    _run_with_decision(tmp_path / "run", people, approval, operator_key=tmp_path / "olivia.key")
    report = verify_run(tmp_path / "run")
    assert report.ok and report.notes == [], (report.failure, report.notes)


def test_four_eyes_approval_with_the_operators_own_key_fails(tmp_path: Path) -> None:
    people = _four_eyes_people(tmp_path)
    approval = _signed(tmp_path / "bob.key").model_dump()
    _run_with_decision(tmp_path / "run", people, approval, operator_key=tmp_path / "bob.key")
    report = verify_run(tmp_path / "run")
    assert report.failure == (
        "review: an update was approved with the key that started or resumed the run (four-eyes)"
    )


def test_four_eyes_operator_proof_that_does_not_verify_fails(tmp_path: Path) -> None:
    people = _four_eyes_people(tmp_path)
    approval = _signed(tmp_path / "bob.key").model_dump()
    _run_with_decision(tmp_path / "run", people, approval, operator_key=tmp_path / "olivia.key")
    # the log key holder swaps in a proof made for another run: the chain and head re-signed
    lines = (tmp_path / "run" / "audit.jsonl").read_bytes().splitlines()
    forged = operator_record(
        origin_of("ffffffffffffffff"), "op", None, key=load_reviewer_key(tmp_path / "olivia.key")
    )
    run_dir = tmp_path / "forged"
    run_dir.mkdir()
    key = Ed25519PrivateKey.generate()
    write_public_key(run_dir / PUBLIC_KEY_FILE, key.public_key())
    shutil.copytree(tmp_path / "run" / "checkpoints", run_dir / "checkpoints")
    log = AuditLog(run_dir / "audit.jsonl")
    for raw in lines:
        entry = json.loads(raw)
        if entry["type"] == "run_started":  # under the forger's own log key
            entry["payload"] |= _started(key, RUN_ID, entry["payload"]["policy"]["gate"],
                                         entry["payload"]["base_checkpoint_id"])  # fmt: skip
            entry["payload"]["operator"] = forged
        log.append(entry["type"], entry["payload"])
    HeadSigner(log, key, origin_of(RUN_ID), run_dir / HEAD_FILE).sign()
    log.close()
    report = verify_run(run_dir)
    assert report.failure is not None and report.failure.startswith("review: the operator's proof")

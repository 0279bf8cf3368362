"""`guarded-rl audit verify`: prove a run directory's log is the one that was signed.

Checks, in order: the hash chain line by line; the signed head's signature; that the head
covers exactly the log (no entry appended after signing, none cut off); the Merkle root; the
public key against the one the log recorded at its start; every checkpoint the log refers to;
every reviewer decision's own Ed25519 signature (the run's key alone cannot forge an approval);
that every entry fits the schema of its type (`audit/events.py`); the feedback store's id;
and, with an anchor (an earlier head kept elsewhere), that the log still extends it.
The first problem is reported with the entry (seq) it concerns, or `head`/`anchor`.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

from guarded_rl.audit.checkpoints import CheckpointStore
from guarded_rl.audit.events import validate_payload
from guarded_rl.audit.head import SignedHead, key_id, load_public_key, read_head, verify_head
from guarded_rl.audit.log import AuditEntry, iter_entries, scan_log
from guarded_rl.audit.merkle import merkle_root
from guarded_rl.errors import AuditError, InputError
from guarded_rl.rundir.paths import HEAD_FILE, LOG_FILE, PUBLIC_KEY_FILE

_CHECKPOINT_KEY = b'"checkpoint_id":"'


@dataclass
class VerifyReport:
    entries: int = 0
    signed_size: int = 0
    root_hash: str = ""
    checkpoints: int = 0
    decisions: int = 0  # reviewer decisions whose signatures verified
    failure: str | None = None  # one line: where and why
    failure_seq: int | None = None
    torn: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None

    def fail(self, where: str, reason: str, seq: int | None = None) -> VerifyReport:
        self.failure = f"{where}: {reason}"
        self.failure_seq = seq
        return self


def verify_run(
    run_dir: str | Path,
    *,
    public_key: Path | None = None,
    anchor: Path | SignedHead | None = None,
) -> VerifyReport:
    """Verify a run directory; `anchor` is an earlier head's file or the parsed head itself."""
    run_dir = Path(run_dir)
    log_path = run_dir / LOG_FILE
    if not run_dir.is_dir():
        raise InputError("no such run directory", field="RUN_DIR", got=str(run_dir))
    if not log_path.is_file():
        raise InputError("not a run directory (no audit.jsonl)", field="RUN_DIR", got=str(run_dir))
    report = VerifyReport()
    scan = scan_log(log_path)
    report.entries = len(scan.hashes)
    if scan.problem is not None:
        report.torn = scan.problem.torn
        reason = scan.problem.reason
        if scan.problem.torn:
            reason += "; `guarded-rl audit repair` removes it"
        return report.fail(f"seq {scan.problem.seq}", reason, scan.problem.seq)

    try:
        head = read_head(run_dir / HEAD_FILE)
        key_path = public_key or run_dir / PUBLIC_KEY_FILE
        key = load_public_key(key_path)
    except AuditError as exc:
        return report.fail("head", exc.one_line())
    if not verify_head(head, key):
        return report.fail(
            "head", "signature does not verify with the public key (swapped or forged head)"
        )
    report.signed_size, report.root_hash = head.tree_size, head.root_hash
    if head.tree_size > len(scan.hashes):
        seq = len(scan.hashes)
        return report.fail(
            f"seq {seq}",
            f"log has {len(scan.hashes)} entries but the signed head covers {head.tree_size}: "
            "entries were removed (truncated tail)",
            seq,
        )
    if merkle_root([bytes.fromhex(h) for h in scan.hashes[: head.tree_size]]) != bytes.fromhex(
        head.root_hash
    ):
        return report.fail(
            "head", "Merkle root does not match the log (entries rewritten, or another log's head)"
        )
    if head.tree_size < len(scan.hashes):
        seq = head.tree_size
        return report.fail(
            f"seq {seq}",
            f"entry is not covered by the signed head ({len(scan.hashes) - head.tree_size} "
            "entries appended after the last signature: forged, or a crash before signing; "
            "`guarded-rl audit repair` re-signs with the run's key)",
            seq,
        )

    lines = log_path.read_bytes().split(b"\n")
    try:
        recorded_key = json.loads(lines[0])["payload"].get("key_id")
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return report.fail("seq 0", "not an audit entry (wrong fields)", 0)
    if recorded_key is not None and recorded_key != key_id(key):
        return report.fail("head", "public key differs from the one recorded at run start")

    store = CheckpointStore(run_dir / "checkpoints") if (run_dir / "checkpoints").is_dir() else None
    for seq, raw in enumerate(lines[: len(scan.hashes)]):
        if _CHECKPOINT_KEY not in raw:
            continue
        try:
            checkpoint_id = json.loads(raw)["payload"].get("checkpoint_id")
        except (ValueError, KeyError, TypeError, AttributeError):
            return report.fail(f"seq {seq}", "not an audit entry (wrong fields)", seq)
        if not checkpoint_id:
            continue
        if store is None:
            return report.fail(f"seq {seq}", "checkpoints/ directory is missing", seq)
        try:
            store.verify(checkpoint_id)
        except AuditError as exc:
            return report.fail(
                f"seq {seq}", f"checkpoint {checkpoint_id[:12]}: {exc.one_line()}", seq
            )
        report.checkpoints += 1

    problem = _check_decisions(run_dir, lines[: len(scan.hashes)], report)
    if problem is not None:
        return report

    for entry in itertools.islice(iter_entries(log_path), len(scan.hashes)):
        try:
            validate_payload(entry.type, entry.payload)  # the failure names seq itself
        except AuditError as exc:
            return report.fail(f"seq {entry.seq}", exc.one_line(), entry.seq)

    problem = _check_store(run_dir, json.loads(lines[0])["payload"].get("store_id"))
    if problem is not None:
        return report.fail("feedback.sqlite", problem)

    if anchor is not None:
        problem = _check_anchor(anchor, key, scan.hashes)
        if problem is not None:
            return report.fail("anchor", problem)
        shown = anchor if isinstance(anchor, Path) else f"of {anchor.tree_size} entries"
        report.notes.append(f"extends anchor {shown}")
    return report


def _check_decisions(run_dir: Path, lines: list[bytes], report: VerifyReport) -> str | None:
    """Each `review_decision` must carry a valid reviewer signature over this run's origin and
    the candidate its proposal recorded. Keys no longer in the reviewers file are noted."""
    from pydantic import ValidationError

    from guarded_rl.approval.decision import SignedDecision
    from guarded_rl.approval.queue import operators_of
    from guarded_rl.approval.reviewers import load_registry
    from guarded_rl.audit.signer import origin_of

    started = json.loads(lines[0])["payload"]
    origin = origin_of(str(started.get("run_id")))
    candidates: dict[str, str] = {}
    signers: set[str] = set()
    approvers: set[str] = set()
    starts: list[AuditEntry] = []
    for seq, raw in enumerate(lines):
        if seq == 0 or b'"type":"run_resumed"' in raw:
            start = json.loads(raw)
            if start["type"] in ("run_started", "run_resumed"):
                starts.append(AuditEntry(seq, start["ts"], start["type"], start["payload"],
                                         start["prev"], start["hash"]))  # fmt: skip
            continue
        if b'"type":"update_pending"' not in raw and b'"type":"review_decision"' not in raw:
            continue
        entry = json.loads(raw)
        payload = entry["payload"]
        if entry["type"] == "update_pending" and "proposal_id" in payload:
            candidates[payload["proposal_id"]] = payload["candidate_sha256"]
            continue
        if entry["type"] != "review_decision":
            continue
        try:
            signed = SignedDecision.model_validate(payload["decision"])
        except (ValidationError, KeyError, TypeError):
            report.fail(f"seq {seq}", "reviewer decision is malformed", seq)
            return report.failure
        body = signed.body
        if not signed.signature_valid():
            report.fail(f"seq {seq}", "reviewer decision's signature does not verify", seq)
            return report.failure
        if body.origin != origin or candidates.get(body.proposal_id) != body.candidate_sha256:
            report.fail(
                f"seq {seq}", "reviewer decision was signed for another run or candidate", seq
            )
            return report.failure
        report.decisions += 1
        signers.add(body.reviewer)
        if body.decision == "approve":
            approvers.add(body.reviewer)
    gate = (started.get("policy") or {}).get("gate", {})
    operators = operators_of(starts)
    if gate.get("four_eyes") and approvers & operators.fingerprints:
        report.fail("review", "an update was approved with the key that started or resumed the run "
                    "(four-eyes)")  # fmt: skip
        return report.failure
    reviewers = gate.get("reviewers")
    if signers and reviewers:
        try:
            registry = load_registry(reviewers)
        except InputError:
            report.notes.append(f"reviewers file {reviewers} unreadable: signers not matched")
            return None
        listed = {r.fingerprint for r in registry.reviewers}
        unknown = sorted(signers - listed)
        if unknown:
            report.notes.append(f"decisions by keys not in {reviewers} now: {', '.join(unknown)}")
        if gate.get("four_eyes") and approvers:
            problem = operators.unproven(origin, registry)
            if problem is not None and operators.unbound:
                report.notes.append(f"four-eyes not provable: {problem}")
            elif problem is not None:
                report.fail("review", problem)
                return report.failure
    return None


def _check_store(run_dir: Path, recorded: object) -> str | None:
    """The feedback store must be the one the run created (its random id, in `run_started`):
    a store swapped in from another run (or a rebuilt one) is caught here, not only by replay."""
    import sqlite3

    if recorded is None:  # a run from before stores had ids
        return None
    path = run_dir / "feedback.sqlite"
    if not path.is_file():
        return f"missing; the run recorded store {recorded}"
    try:
        # read-only and leaving no -wal/-shm behind; a live store's WAL is read as it stands
        live = path.with_name(path.name + "-wal").exists()
        query = "mode=ro" if live else "immutable=1"
        db = sqlite3.connect(f"{path.resolve().as_uri()}?{query}", uri=True)
        try:
            row = db.execute("SELECT value FROM store_secrets WHERE name = 'store_id'").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        return f"not a readable feedback store ({exc})"
    found = bytes(row[0]).decode("ascii", "replace") if row is not None else None
    if found != recorded:
        return f"store id {found} is not the store {recorded} this run recorded (swapped store)"
    return None


def _check_anchor(anchor: Path | SignedHead, key: object, hashes: list[str]) -> str | None:
    if isinstance(anchor, SignedHead):
        earlier = anchor
    else:
        try:
            earlier = read_head(anchor)
        except AuditError as exc:
            return exc.one_line()
    if not verify_head(earlier, key):  # type: ignore[arg-type]  # the public key load_public_key returned
        return "anchor's signature does not verify with the public key"
    if earlier.tree_size > len(hashes):
        return f"log has {len(hashes)} entries, fewer than the anchor's {earlier.tree_size}"
    root = merkle_root([bytes.fromhex(h) for h in hashes[: earlier.tree_size]])
    if root != bytes.fromhex(earlier.root_hash):
        return (
            f"the first {earlier.tree_size} entries differ from those the anchor signed "
            "(history was rewritten)"
        )
    return None

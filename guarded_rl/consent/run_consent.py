"""Consent operations on a run directory: grant, revoke (and erase), show, export, purge.

Each operation first verifies the run's signed audit log, works on the run's feedback store,
and records what it did as signed log entries that name people only by pseudonym. Revocation
erases: the subject's feedback rows, sealed id and sealed replay inputs are deleted and their
key destroyed (crypto-shredding). It is not retroactive: updates already trained on their
feedback stay applied, and the result lists those still in the live weights (apart from those
a rollback already undid) so an operator can decide on a rollback.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guarded_rl.audit.appendable import run_signing_key
from guarded_rl.audit.events import validate_payload
from guarded_rl.audit.history import RunHistory
from guarded_rl.audit.log import LOG_FILE
from guarded_rl.audit.run_lock import run_lock
from guarded_rl.audit.signer import HeadSigner, recorded_store_key_file
from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
from guarded_rl.consent.store import consent_text_sha256, export_document
from guarded_rl.errors import InputError
from guarded_rl.policy import parse_policy

STORE_FILE = "feedback.sqlite"


@dataclass(frozen=True, slots=True)
class RunStore:
    """An opened run: its verified history, policy and feedback store."""

    run_dir: Path
    history: RunHistory
    store: SQLiteFeedbackStore
    key: Any = None  # the run's signing key, when opened for writing

    @property
    def policy(self) -> Any:
        source = f"{self.run_dir / LOG_FILE}:run_started"
        return parse_policy(self.history.started.get("policy", {}), source=source)


@contextmanager
def open_run_store(
    run_dir: str | Path, *, key_file: Path | None = None, writing: bool = False
) -> Iterator[RunStore]:
    """The run's feedback store, after its audit log has verified (`writing`: against its
    signed head, with the run's own key loaded, before the store is touched)."""
    run_dir = Path(run_dir)
    if not (run_dir / STORE_FILE).is_file():
        raise InputError(
            "not a run directory (no feedback.sqlite)",
            field="RUN_DIR",
            got=str(run_dir),
            expected="a directory written by `guarded-rl run`",
        )
    with run_lock(run_dir):  # no live run or other command may write meanwhile
        key = None
        if writing:  # nothing is written unless the signed log proves and the key is its own
            key = run_signing_key(run_dir, key_file)
        history = RunHistory.load(run_dir)  # the log must verify before we act on or add to it
        store = SQLiteFeedbackStore(run_dir / STORE_FILE, key_file=recorded_store_key_file(run_dir))
        try:
            yield RunStore(run_dir, history, store, key)
        finally:
            store.close()


def append_entries(
    run_dir: str | Path,
    entries: Sequence[tuple[str, dict[str, Any]]],
    *,
    key_file: Path | None = None,
    history: RunHistory | None = None,
    key: Any = None,
) -> None:
    """Append entries to the run's log and sign a new head over them. `history`: the log as
    already verified under the same lock (not read and verified a second time); `key`: the
    run's key as `open_run_store(writing=True)` loaded it."""
    run_dir = Path(run_dir)
    for kind, payload in entries:  # all or nothing: the last may not fail after the first
        validate_payload(kind, payload)
    with run_lock(run_dir):
        if history is None:
            history = RunHistory.load(run_dir)
        if key is None:
            key = run_signing_key(run_dir, key_file)
        signer = HeadSigner.for_run(run_dir, key, history.started["run_id"])
        try:
            for kind, payload in entries:
                signer.log.append(kind, payload)
            signer.sign()
        finally:
            signer.log.close()


def grant(
    run_dir: str | Path,
    user_id: str,
    purposes: Sequence[str],
    *,
    key_file: Path | None = None,
) -> dict[str, Any]:
    """Record a person's consent for `purposes` under the run policy's consent text."""
    with run_lock(run_dir):  # store work and its log entries as one operation
        with open_run_store(run_dir, key_file=key_file, writing=True) as opened:
            text_sha256 = consent_text_sha256(opened.policy.consent.consent_text)
            subject = opened.store.grant(user_id, purposes, text_sha256=text_sha256)
        payload = {
            "subject": subject,
            "purposes": sorted(purposes),
            "consent_text_sha256": text_sha256,
        }
        entries = [("consent_granted", payload)]
        append_entries(run_dir, entries, key=opened.key, history=opened.history)
        return payload


def revoke(
    run_dir: str | Path,
    user_id: str,
    *,
    key_file: Path | None = None,
) -> dict[str, Any]:
    """Withdraw every consent of a person and erase their data; list the updates it trained."""
    with run_lock(run_dir):  # store work and its log entries as one operation
        with open_run_store(run_dir, key_file=key_file, writing=True) as opened:
            store = opened.store
            subject = store.pseudonym(user_id)
            if not store.known_subject(subject):
                raise InputError(
                    "no consent on record for this user in this run",
                    field="--user",
                    got=user_id,
                    expected="a user id that was granted consent",
                )
            if not store.consents_current(subject) and store.user_id_of(subject) is None:
                raise InputError(
                    "this user's consent was already revoked and their data erased",
                    field="--user",
                    got=user_id,
                )
            withdrawn = store.revoke(subject)
            erasure = store.erase_subject(subject)
            trained = _trained_updates(opened.history, erasure.trained_cycles)
        revoked = {"subject": subject, "purposes": withdrawn}
        erased = {
            "subject": subject,
            "feedback_rows": erasure.feedback_rows,
            "replay_rows": erasure.replay_rows,
            "key_destroyed": erasure.key_destroyed,
            "method": "crypto-shredding (subject key deleted) and row deletion",
            "trained_in_cycles": list(erasure.trained_cycles),
            **trained,
        }
        entries = [("consent_revoked", revoked), ("erasure", erased)]
        append_entries(run_dir, entries, key=opened.key, history=opened.history)
        return erased


def show(run_dir: str | Path, user_id: str) -> dict[str, Any]:
    """A person's consents and how much of their feedback is held (no decryption of fields)."""
    with open_run_store(run_dir) as opened:
        store = opened.store
        subject = store.pseudonym(user_id)
        consents = store.consents(subject)
        rows = store.subject_rows(subject)
        cycles = store.trained_cycles(subject)
        return {
            "pseudonym": subject,
            "consents": [
                {
                    "purpose": c.purpose,
                    "current": c.current,
                    "consent_text_sha256": c.text_sha256,
                    "granted_at": c.granted_at,
                    "revoked_at": c.revoked_at,
                }
                for c in consents
            ],
            "feedback_rows": len(rows),
            "trained_in_cycles": cycles,
            **_trained_updates(opened.history, cycles),
        }


def ledger(run_dir: str | Path) -> list[dict[str, Any]]:
    """Who consented to what, by pseudonym, with the feedback rows held for each."""
    with open_run_store(run_dir) as opened:
        return opened.store.ledger()


def items(run_dir: str | Path, *, cycle: int | None = None) -> list[dict[str, Any]]:
    """The item ids people may rate in this run (`feedback import`), by cycle."""
    with open_run_store(run_dir) as opened:
        return opened.store.items(cycle=cycle)


def export(run_dir: str | Path, user_id: str) -> dict[str, Any]:
    """All of a person's data, decrypted for them only (access and portability)."""
    with open_run_store(run_dir) as opened:
        store = opened.store
        subject = store.pseudonym(user_id)
        if not store.known_subject(subject):
            raise InputError(
                "no data on record for this user in this run", field="--user", got=user_id
            )
        return export_document(
            subject,
            store.user_id_of(subject),
            store.consents(subject),
            store.subject_rows(subject),
            store.trained_cycles(subject),
        )


def purge(
    run_dir: str | Path,
    *,
    retention_days: int | None = None,
    key_file: Path | None = None,
) -> dict[str, Any]:
    """Delete feedback older than the retention period (the run policy's by default)."""
    with run_lock(run_dir):  # store work and its log entries as one operation
        with open_run_store(run_dir, key_file=key_file, writing=True) as opened:
            days = retention_days
            if days is None:
                days = opened.policy.consent.retention_days
            if days is None:
                raise InputError(
                    "the run's policy keeps feedback until erased (consent.retention_days unset)",
                    field="--days",
                    expected="a number of days",
                )
            removed = opened.store.purge_expired(days)
        payload = {"retention_days": days, "feedback_rows": removed}
        entries = [("retention_purge", payload)]
        append_entries(run_dir, entries, key=opened.key, history=opened.history)
        return payload


def _trained_updates(history: RunHistory, cycles: Sequence[int]) -> dict[str, Any]:
    """Of the updates these cycles trained, which were applied, which of those are still in the
    live weights and which a rollback undid, and where a rollback would leave none of them live
    (`rollback_target`: the last live update before the first affected one; None: only the
    start model is free of them)."""
    live = history.live_cycles()
    applied: list[dict[str, Any]] = [
        {"cycle": c, "model_sha256": history.applied[c].get("model_sha256")}
        for c in sorted(set(cycles))
        if c in history.applied
    ]
    in_live = [u for u in applied if u["cycle"] in live]
    earlier = [c for c in live if in_live and c < in_live[0]["cycle"]]
    return {
        "applied_updates": applied,
        "live_updates": in_live,
        "rolled_back_updates": [u for u in applied if u["cycle"] not in live],
        "rollback_target": max(earlier) if earlier else None,
    }

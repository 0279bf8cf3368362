"""Revoking consent in a run directory: stop using, erase, and put it on the record.

Revocation marks the consent withdrawn, deletes the subject's stored feedback, crypto-shreds
their sealed replay inputs (their key is deleted, so replay reports the updates that used them
as not replayable), and appends `consent_revoked` and `erasure` entries to the signed log.
The log names the subject only by a commitment: SHA-256 of the run id and the pseudonym, which
someone who already knows the pseudonym can check and nobody else can invert.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from guarded_rl.audit.head import load_signing_key
from guarded_rl.audit.history import RunHistory
from guarded_rl.audit.signer import HeadSigner, recorded_key_file
from guarded_rl.consent.replay_store import ReplayStore
from guarded_rl.consent.store import SQLiteConsentStore
from guarded_rl.errors import InputError


def subject_commitment(run_id: str, subject: str) -> str:
    return hashlib.sha256(f"guarded-rl/subject/{run_id}/{subject}".encode()).hexdigest()


def revoke_consent(
    run_dir: str | Path,
    subject: str,
    *,
    purpose: str | None = None,
    key_file: Path | None = None,
) -> dict[str, Any]:
    run_dir = Path(run_dir)
    history = RunHistory.load(run_dir)  # the log must verify before we add to it
    started = history.started
    purpose = purpose or started["policy"]["consent"]["purpose"]
    consent = SQLiteConsentStore(run_dir / "feedback.sqlite")
    replay = ReplayStore(run_dir / "feedback.sqlite")
    try:
        if not consent.revoke(subject, purpose):
            raise InputError(
                "no active consent for this subject and purpose",
                field="subject",
                got=subject,
                expected=f"a subject with consent for '{purpose}'",
            )
        feedback_rows = consent.erase_feedback(subject)
        replay_rows = replay.erase_subject(subject)
    finally:
        consent.close()
        replay.close()
    commitment = subject_commitment(started["run_id"], subject)
    key = load_signing_key(Path(key_file) if key_file else recorded_key_file(run_dir))
    signer = HeadSigner.for_run(run_dir, key, started["run_id"])
    audit = signer.log
    audit.append("consent_revoked", {"purpose": purpose, "subject_sha256": commitment})
    payload = {
        "subject_sha256": commitment,
        "feedback_rows": feedback_rows,
        "replay_rows": replay_rows,
        "method": "crypto-shredding (subject key deleted) and row deletion",
    }
    audit.append("erasure", payload)
    signer.sign()
    audit.close()
    return payload

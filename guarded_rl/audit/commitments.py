"""Commitments the log makes to what a learner saw, without holding it.

An `update_proposed` entry records `batch_sha256`; the sealed batch lives in the feedback store
(where erasure can destroy it). Replay checks a stored batch against this commitment, so both
the writer (the guard) and the readers (replay, rollback) compute it here, in the audit layer.
"""

from __future__ import annotations

import hashlib

from guarded_rl.audit.log import canonical_json
from guarded_rl.records import Batch


def batch_commitment(batch: Batch) -> str:
    """SHA-256 over what the learner saw: ids, token ids and rewards (no text, no identity)."""
    rows = [
        [s.sample_id, list(s.prompt_ids), list(s.completion_ids), r]
        for s, r in zip(batch.samples, batch.rewards, strict=True)
    ]
    return hashlib.sha256(canonical_json(rows).encode()).hexdigest()

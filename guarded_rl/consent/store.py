"""The consent ledger and feedback store interface, and the records it hands out.

Feedback is personal data. The store keeps it only under a current, purpose-bound consent,
names people only by pseudonyms (a keyed HMAC of their external id), seals the personal
fields of each row (comment, group attribute, the id mapping) under a key of the subject, and
erases by deleting that key (crypto-shredding). `SQLiteFeedbackStore` (`sqlite_store.py`) is
the default; a PostgreSQL store would implement the same Protocol.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from guarded_rl.records import Feedback

TRAINING = "training"
EVALUATION = "evaluation"
FAIRNESS = "fairness-analysis"
#: the purposes a person can consent to
PURPOSES: tuple[str, ...] = (TRAINING, EVALUATION, FAIRNESS)

#: rewards a person's feedback may carry (the guard's own penalties may go lower)
REWARD_RANGE = (-1.0, 1.0)
MAX_COMMENT_CHARS = 2000
MAX_GROUP_CHARS = 64


def consent_text_sha256(text: str) -> str:
    """The version of a consent text: what a grant records that the person agreed to."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    purpose: str
    text_sha256: str
    granted_at: float
    revoked_at: float | None

    @property
    def current(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class StoredFeedback:
    """One stored row; `comment` and `group` are None unless opened with the subject's key."""

    feedback_id: str
    subject: str  # pseudonym
    item_id: str
    cycle: int | None
    reward: float
    source: str
    purposes: tuple[str, ...]
    recorded_at: float
    comment: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class Erasure:
    """What erasing a subject removed."""

    subject: str
    feedback_rows: int
    replay_rows: int
    key_destroyed: bool
    trained_cycles: tuple[int, ...] = field(default=())


class FeedbackStore(Protocol):
    """Consent ledger + feedback rows. Every method is one transaction."""

    def pseudonym(self, user_id: str) -> str: ...

    def grant(self, user_id: str, purposes: Sequence[str], *, text_sha256: str) -> str: ...

    def has_consent(self, subject: str, purpose: str) -> bool: ...

    def record(
        self, feedback: Sequence[Feedback], *, purpose: str, cycle: int
    ) -> tuple[list[Feedback], int]: ...

    def training_feedback(self, cycle: int, *, purpose: str) -> list[Feedback]: ...

    def register_items(self, item_ids: Sequence[str], *, cycle: int | None) -> None: ...

    def close(self) -> None: ...


def export_document(
    subject: str,
    user_id: str | None,
    consents: Sequence[ConsentRecord],
    rows: Sequence[StoredFeedback],
    trained_cycles: Sequence[int],
) -> dict[str, Any]:
    """All a subject's data, as `consent export` writes it (Art. 15 and 20)."""
    return {
        "pseudonym": subject,
        "user_id": user_id,
        "consents": [
            {
                "purpose": c.purpose,
                "consent_text_sha256": c.text_sha256,
                "granted_at": c.granted_at,
                "revoked_at": c.revoked_at,
            }
            for c in consents
        ],
        "feedback": [
            {
                "feedback_id": r.feedback_id,
                "item_id": r.item_id,
                "cycle": r.cycle,
                "reward": r.reward,
                "source": r.source,
                "purposes": list(r.purposes),
                "recorded_at": r.recorded_at,
                "comment": r.comment,
                "group": r.group,
            }
            for r in rows
        ],
        "trained_in_cycles": list(trained_cycles),
    }

"""Consent-aware feedback storage: feedback is kept only under a valid, purpose-bound consent.

One SQLite file per run (`feedback.sqlite`). Subjects appear only as pseudonyms. Feedback from
a subject without consent for the purpose is refused and counted, never written.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from guarded_rl.errors import ConsentError
from guarded_rl.records import Feedback

_SCHEMA = """
CREATE TABLE IF NOT EXISTS consent (
    subject TEXT NOT NULL,
    purpose TEXT NOT NULL,
    granted_at REAL NOT NULL,
    revoked_at REAL,
    PRIMARY KEY (subject, purpose)
);
CREATE TABLE IF NOT EXISTS feedback (
    sample_id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    purpose TEXT NOT NULL,
    cycle INTEGER NOT NULL,
    reward REAL NOT NULL,
    source TEXT NOT NULL,
    grp TEXT NOT NULL,
    recorded_at REAL NOT NULL
);
"""


class ConsentStore(Protocol):
    """Records consent and the feedback it covers."""

    def grant(self, subject: str, purpose: str) -> None: ...

    def has_consent(self, subject: str, purpose: str) -> bool: ...

    def record(
        self, feedback: Sequence[Feedback], *, purpose: str, cycle: int
    ) -> tuple[list[Feedback], int]: ...


class SQLiteConsentStore:
    """Default consent store: one SQLite file, one transaction per recorded batch."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA secure_delete = ON")  # erased rows do not linger on disk
        self._db.executescript(_SCHEMA)
        self._cache: dict[tuple[str, str], bool] = {}

    def close(self) -> None:
        self._db.close()

    def grant(self, subject: str, purpose: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO consent (subject, purpose, granted_at) VALUES (?, ?, ?) "
                "ON CONFLICT (subject, purpose) DO UPDATE SET granted_at = excluded.granted_at,"
                " revoked_at = NULL",
                (subject, purpose, time.time()),
            )
        self._cache[(subject, purpose)] = True

    def revoke(self, subject: str, purpose: str) -> bool:
        """Withdraw consent for a purpose; True when there was a consent to withdraw."""
        with self._db:
            changed = self._db.execute(
                "UPDATE consent SET revoked_at = ? WHERE subject = ? AND purpose = ? "
                "AND revoked_at IS NULL",
                (time.time(), subject, purpose),
            ).rowcount
        self._cache[(subject, purpose)] = False
        return changed > 0

    def erase_feedback(self, subject: str) -> int:
        """Delete every stored feedback row of a subject; returns how many."""
        with self._db:
            return self._db.execute("DELETE FROM feedback WHERE subject = ?", (subject,)).rowcount

    def has_consent(self, subject: str, purpose: str) -> bool:
        key = (subject, purpose)
        if key not in self._cache:
            row = self._db.execute(
                "SELECT revoked_at FROM consent WHERE subject = ? AND purpose = ?", key
            ).fetchone()
            self._cache[key] = row is not None and row[0] is None
        return self._cache[key]

    def record(
        self, feedback: Sequence[Feedback], *, purpose: str, cycle: int
    ) -> tuple[list[Feedback], int]:
        """Store the feedback covered by consent; return it and how many were refused."""
        if not purpose:
            raise ConsentError("empty consent purpose", field="consent.purpose", got=purpose)
        accepted = [f for f in feedback if self.has_consent(f.subject, purpose)]
        now = time.time()
        with self._db:
            self._db.executemany(
                "INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (f.sample_id, f.subject, purpose, cycle, f.reward, f.source, f.group, now)
                    for f in accepted
                ],
            )
        return accepted, len(feedback) - len(accepted)

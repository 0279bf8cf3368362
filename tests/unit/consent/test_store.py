"""Consent-aware feedback storage on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from guarded_rl.consent.store import SQLiteConsentStore
from guarded_rl.errors import ConsentError
from guarded_rl.records import Feedback

PURPOSE = "model_training"


def _fb(i: int, subject: str, reward: float = 1.0, source: str = "person") -> Feedback:
    return Feedback(f"c0-r{i}-k0", subject, reward, source, "A")  # type: ignore[arg-type]


def _rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT sample_id, subject, purpose, cycle, reward, source, grp FROM feedback"
            " ORDER BY sample_id"
        ).fetchall()


def test_without_consent_feedback_is_refused_counted_and_not_written(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    store = SQLiteConsentStore(path)
    accepted, refused = store.record([_fb(0, "u-a"), _fb(1, "u-b")], purpose=PURPOSE, cycle=0)
    store.close()
    assert accepted == []
    assert refused == 2
    assert _rows(path) == []


def test_with_consent_feedback_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    store = SQLiteConsentStore(path)
    store.grant("u-a", PURPOSE)
    feedback = [_fb(0, "u-a", 1.0), _fb(1, "u-b", 0.0), _fb(2, "u-a", -1.0, "penalty")]
    accepted, refused = store.record(feedback, purpose=PURPOSE, cycle=3)
    store.close()
    assert accepted == [feedback[0], feedback[2]]
    assert refused == 1
    assert _rows(path) == [
        ("c0-r0-k0", "u-a", PURPOSE, 3, 1.0, "person", "A"),
        ("c0-r2-k0", "u-a", PURPOSE, 3, -1.0, "penalty", "A"),
    ]


def test_consent_is_purpose_bound() -> None:
    store = SQLiteConsentStore(":memory:")
    store.grant("u-a", "x")
    assert store.has_consent("u-a", "x")
    assert not store.has_consent("u-a", "y")
    accepted, refused = store.record([_fb(0, "u-a")], purpose="y", cycle=0)
    assert (accepted, refused) == ([], 1)
    accepted, refused = store.record([_fb(1, "u-a")], purpose="x", cycle=0)
    assert (len(accepted), refused) == (1, 0)


def test_consent_checked_before_grant_is_not_stale() -> None:
    store = SQLiteConsentStore()
    assert not store.has_consent("u-a", PURPOSE)
    store.grant("u-a", PURPOSE)
    assert store.has_consent("u-a", PURPOSE)
    store.grant("u-a", PURPOSE)  # granting again is harmless
    assert store.has_consent("u-a", PURPOSE)


def test_consent_persists_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    first = SQLiteConsentStore(path)
    first.grant("u-a", PURPOSE)
    first.close()
    second = SQLiteConsentStore(path)
    assert second.has_consent("u-a", PURPOSE)
    assert not second.has_consent("u-b", PURPOSE)
    second.close()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT subject, purpose, revoked_at FROM consent").fetchall()
    assert rows == [("u-a", PURPOSE, None)]


def test_revoked_consent_in_the_file_is_not_consent(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    store = SQLiteConsentStore(path)
    store.grant("u-a", PURPOSE)
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE consent SET revoked_at = 1.0 WHERE subject = 'u-a'")
    reopened = SQLiteConsentStore(path)
    assert not reopened.has_consent("u-a", PURPOSE)
    assert reopened.record([_fb(0, "u-a")], purpose=PURPOSE, cycle=0) == ([], 1)


def test_empty_purpose_raises() -> None:
    store = SQLiteConsentStore()
    store.grant("u-a", PURPOSE)
    with pytest.raises(ConsentError) as info:
        store.record([_fb(0, "u-a")], purpose="", cycle=0)
    assert info.value.field == "consent.purpose"


def test_empty_feedback_list() -> None:
    assert SQLiteConsentStore().record([], purpose=PURPOSE, cycle=0) == ([], 0)

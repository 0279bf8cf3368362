"""Writes `store-v0.sqlite` (+ `.key`): a feedback store as guarded-rl wrote it before the
store had a schema version (commit 445b97e, two classes owning the file). Kept so the test that
opens it shows how it was made; run from the repository root with that commit checked out:
`python tests/unit/consent/data/make_store_v0.py`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from guarded_rl.consent.replay_store import ReplayStore
from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
from guarded_rl.consent.store import FAIRNESS, TRAINING, StoredFeedback, consent_text_sha256
from guarded_rl.records import Batch, Feedback, Sample

HERE = Path(__file__).parent
TEXT = consent_text_sha256("v0 consent text")


def main() -> None:
    path = HERE / "store-v0.sqlite"
    for old in (path, HERE / "store-v0.sqlite.key"):
        old.unlink(missing_ok=True)
    store = SQLiteFeedbackStore(path)
    alice = store.grant("alice@example.org", [TRAINING, FAIRNESS], text_sha256=TEXT)
    bob = store.grant("bob@example.org", [TRAINING], text_sha256=TEXT)
    store.register_items(["s-a", "s-b"], cycle=0)
    store.record(
        [Feedback("s-a", alice, 0.5, "person", "g-a"), Feedback("s-b", bob, -0.5, "person", "")],
        purpose=TRAINING,
        cycle=0,
    )
    store.store_feedback(
        [StoredFeedback("f-1", alice, "s-a", 0, 1.0, "person", (TRAINING,), 1.7e9, "nice", "g-a")]
    )
    store.close()
    replay = ReplayStore(path)
    samples = tuple(
        Sample(sid, 0, who, "", "", (1, 2, 3), (4, 5))
        for sid, who in (("s-a", alice), ("s-b", bob))
    )
    replay.store_batch(Batch(0, samples, (0.5, -0.5), ("r0", "r0"), ()))
    replay.close()
    db = sqlite3.connect(path, isolation_level=None)  # one file: the WAL folded in and gone
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


if __name__ == "__main__":
    main()

"""`FeedbackDatabase`, the one owner of `feedback.sqlite`: shared keys, one erasure, schema."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from guarded_rl.consent.database import (
    SCHEMA_VERSION,
    FeedbackDatabase,
    subject_key_label,
)
from guarded_rl.consent.replay_store import ReplayInputsErased, ReplayStore
from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
from guarded_rl.consent.store import FAIRNESS, TRAINING, StoredFeedback, consent_text_sha256
from guarded_rl.consent.store_key import default_store_key_file, load_store_key
from guarded_rl.errors import AuditError
from guarded_rl.records import Batch, Feedback, Sample

TEXT = consent_text_sha256("consent text")
DATA = Path(__file__).parent / "data"


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _batch(cycle: int, subjects: list[str]) -> Batch:
    samples = tuple(
        Sample(f"c{cycle}-{i}", cycle, who, "", "", (1, i), (2, i))
        for i, who in enumerate(subjects)
    )
    return Batch(cycle, samples, tuple(0.5 for _ in samples), ("g",) * len(samples), ())


def _counts(path: Path, subject: str) -> dict[str, int]:
    with _raw(path) as db:
        return {
            table: db.execute(
                f"SELECT COUNT(*) FROM {table} WHERE subject = ?", (subject,)
            ).fetchone()[0]
            for table in ("feedback", "replay_inputs", "subjects", "subject_keys")
        } | {
            "current consents": db.execute(
                "SELECT COUNT(*) FROM consent WHERE subject = ? AND revoked_at IS NULL",
                (subject,),
            ).fetchone()[0]
        }


def _filled(tmp_path: Path) -> tuple[Path, str, str]:
    """A store with two people, their feedback (one with sealed fields) and two batches."""
    path = tmp_path / "feedback.sqlite"
    store = SQLiteFeedbackStore(path)
    alice = store.grant("alice@example.org", [TRAINING, FAIRNESS], text_sha256=TEXT)
    bob = store.grant("bob@example.org", [TRAINING], text_sha256=TEXT)
    store.record(
        [Feedback("c0-0", alice, 0.5, "person", "g-a"), Feedback("c0-1", bob, 0.5, "person", "")],
        purpose=TRAINING,
        cycle=0,
    )
    store.store_feedback(
        [StoredFeedback("f-a", alice, "c0-0", 0, 1.0, "person", (TRAINING,), 1.0, "hi", "g-a")]
    )
    store.close()
    replay = ReplayStore(path)
    replay.store_batch(_batch(0, [alice, bob, alice]))
    replay.store_batch(_batch(1, [bob]))
    replay.close()
    return path, alice, bob


# -- one key per subject ------------------------------------------------------------------


def test_a_replay_store_and_a_feedback_store_share_one_key_per_subject(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    store = SQLiteFeedbackStore(path)
    replay = ReplayStore(path)  # both open on one file at once, as in a run
    try:
        first = store.grant("carol@example.org", [TRAINING], text_sha256=TEXT)  # key made here
        second = "p-" + "5" * 32  # a key made by the replay store, then used by the ledger
        replay.store_batch(_batch(0, [first, second]))
        store.grant_pseudonym(second, [TRAINING], text_sha256=TEXT)
        store.store_feedback(
            [StoredFeedback("f", second, "i", 0, 1.0, "person", (TRAINING,), 1.0, "words")]
        )
        assert replay.load_batch(0).samples[1].subject == second
        assert store.subject_rows(second)[0].comment == "words"
    finally:
        replay.close()
        store.close()

    store_key = load_store_key(default_store_key_file(path))
    with _raw(path) as db:
        keys = db.execute("SELECT subject, key FROM subject_keys ORDER BY subject").fetchall()
        sealed = db.execute("SELECT position, nonce, ciphertext FROM replay_inputs").fetchall()
        nonce, personal = db.execute("SELECT nonce, personal FROM feedback").fetchone()
        id_nonce, sealed_id = db.execute("SELECT nonce, sealed_id FROM subjects").fetchone()
    assert sorted(s for s, _ in keys) == sorted([first, second])  # one row each, no more
    key = {s: store_key.unwrap(bytes(k), subject_key_label(s), store=str(path)) for s, k in keys}
    who = [first, second]
    for position, row_nonce, ciphertext in sealed:  # each row opens under its subject's key
        AESGCM(key[who[position]]).decrypt(
            row_nonce, ciphertext, f"guarded-rl/replay/0/{position}".encode()
        )
    AESGCM(key[second]).decrypt(nonce, personal, f"guarded-rl/feedback/{second}/f".encode())
    opened = AESGCM(key[first]).decrypt(id_nonce, sealed_id, f"guarded-rl/subject/{first}".encode())
    assert opened == b"carol@example.org"
    again = FeedbackDatabase(path)
    assert again.subject_key(second, create=False) == key[second]
    again.close()


def test_a_subject_key_is_made_only_inside_a_write_transaction(tmp_path: Path) -> None:
    db = FeedbackDatabase(tmp_path / "feedback.sqlite")
    with pytest.raises(AuditError, match="only inside a write transaction"):
        db.subject_key("p-x", create=True)
    assert db.subject_key("p-x", create=False) is None  # nothing was written
    with db.transaction():
        made = db.subject_key("p-x", create=True)
    assert made is not None and db.subject_key("p-x", create=False) == made
    db.close()


# -- one erasure --------------------------------------------------------------------------


def test_erasure_removes_feedback_replay_inputs_and_key_in_one_transaction(
    tmp_path: Path,
) -> None:
    path, alice, bob = _filled(tmp_path)
    before = _counts(path, bob)
    assert before == {
        "feedback": 1,
        "replay_inputs": 2,
        "subjects": 1,
        "subject_keys": 1,
        "current consents": 1,
    }
    replay = ReplayStore(path)  # open while the feedback store erases, as in a run
    store = SQLiteFeedbackStore(path)
    erasure = store.erase_subject(bob)
    assert (erasure.feedback_rows, erasure.replay_rows, erasure.key_destroyed) == (1, 2, True)
    assert erasure.trained_cycles == (0, 1)
    assert _counts(path, bob) == dict.fromkeys(before, 0)
    assert [c.current for c in store.consents(bob)] == [False]  # the record of consent stays
    for cycle in (0, 1):  # the other connection sees it at once: both batches held bob
        with pytest.raises(ReplayInputsErased):
            replay.load_batch(cycle)
    assert _counts(path, alice)["subject_keys"] == 1
    assert {r.feedback_id: r.comment for r in store.subject_rows(alice)} == {
        "f-a": "hi",
        "c0-0": None,
    }

    # the replay store's erasure is the same one: feedback and consent go too
    assert replay.erase_subject(alice) == 2
    assert _counts(path, alice) == dict.fromkeys(before, 0)
    replay.close()
    store.close()
    assert (
        not (tmp_path / "feedback.sqlite-wal").exists()
        or not (tmp_path / "feedback.sqlite-wal").stat().st_size
    )


def test_an_erasure_that_fails_midway_erases_nothing(tmp_path: Path) -> None:
    path, _, bob = _filled(tmp_path)
    store = SQLiteFeedbackStore(path)
    before = _counts(path, bob)
    with _raw(path) as db:  # the last delete fails, after the others have run
        db.execute(
            "CREATE TRIGGER stop BEFORE DELETE ON subject_keys "
            "BEGIN SELECT RAISE(ABORT, 'disk pulled'); END"
        )
    with pytest.raises(AuditError, match=r"rolled back, nothing was erased.*disk pulled"):
        store.erase_subject(bob)
    assert _counts(path, bob) == before
    assert store.user_id_of(bob) == "bob@example.org"
    store.close()
    # and a store holding a trigger (that could quietly keep what erasure deletes) is refused
    with pytest.raises(AuditError, match="trigger its schema does not define") as info:
        SQLiteFeedbackStore(path)
    assert info.value.got == "stop" and info.value.file == str(path)


def _erase_and_die(path: str, subject: str) -> None:
    """Runs in a spawned process: erase, and exit hard after the last delete, before COMMIT."""
    store = SQLiteFeedbackStore(path)
    store._file.connection.create_function("die", 0, lambda: os._exit(9))
    with _raw(Path(path)) as db:
        db.execute("CREATE TRIGGER die AFTER DELETE ON subject_keys BEGIN SELECT die(); END")
    store.erase_subject(subject)


def test_an_erasure_killed_before_it_commits_erases_nothing(tmp_path: Path) -> None:
    path, _, bob = _filled(tmp_path)
    before = _counts(path, bob)
    child = multiprocessing.get_context("spawn").Process(
        target=_erase_and_die, args=(str(path), bob)
    )
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 9  # died inside the transaction
    with _raw(path) as db:
        db.execute("DROP TRIGGER die")
    assert _counts(path, bob) == before
    store = SQLiteFeedbackStore(path)
    assert store.user_id_of(bob) == "bob@example.org"
    assert store.erase_subject(bob).key_destroyed  # and it can be done again, whole
    store.close()


# -- the schema, and stores written before it had a version --------------------------------


def _v0_copy(tmp_path: Path) -> Path:
    path = tmp_path / "feedback.sqlite"
    shutil.copyfile(DATA / "store-v0.sqlite", path)
    key = default_store_key_file(path)
    shutil.copyfile(DATA / "store-v0.sqlite.key", key)
    key.chmod(0o600)  # git does not keep the mode
    return path


def _version(path: Path) -> int:
    with _raw(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def test_a_store_written_by_the_previous_version_opens_and_migrates(tmp_path: Path) -> None:
    path = _v0_copy(tmp_path)
    assert _version(path) == 0
    store = SQLiteFeedbackStore(path)
    alice, bob = store.pseudonym("alice@example.org"), store.pseudonym("bob@example.org")
    assert store.user_id_of(alice) == "alice@example.org"
    assert [(r.feedback_id, r.comment, r.group) for r in store.subject_rows(alice)] == [
        ("f-1", "nice", "g-a"),  # recorded_at 1.7e9: older than the rows `record` stamped
        ("s-a", None, "g-a"),
    ]
    assert [f.sample_id for f in store.training_feedback(0)] == ["s-a", "s-a", "s-b"]
    assert {i["item_id"] for i in store.items()} == {"s-a", "s-b"}
    assert store.trained_cycles(bob) == [0]
    replay = ReplayStore(path)
    batch = replay.load_batch(0)
    assert [s.subject for s in batch.samples] == [alice, bob]
    assert batch.samples[0].prompt_ids == (1, 2, 3) and batch.rewards == (0.5, -0.5)
    assert _version(path) == SCHEMA_VERSION
    with _raw(path) as db:
        names = {n for (n,) in db.execute("SELECT name FROM sqlite_master")}
    assert "replay_inputs_by_subject" in names  # what version 1 added
    erasure = store.erase_subject(bob)
    assert (erasure.feedback_rows, erasure.replay_rows, erasure.key_destroyed) == (1, 1, True)
    with pytest.raises(ReplayInputsErased):
        replay.load_batch(0)
    replay.close()
    store.close()


def test_a_store_the_feedback_store_alone_wrote_gains_the_replay_tables(tmp_path: Path) -> None:
    path = _v0_copy(tmp_path)
    with _raw(path) as db:  # as the previous version left a store no replay store had opened
        db.execute("DROP TABLE replay_inputs")
        db.execute("DROP TABLE replay_batches")
    store = SQLiteFeedbackStore(path)
    bob = store.pseudonym("bob@example.org")
    assert store.trained_cycles(bob) == []
    assert store.erase_subject(bob).replay_rows == 0
    store.close()
    assert _version(path) == SCHEMA_VERSION


def test_a_store_of_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = _v0_copy(tmp_path)
    with _raw(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(AuditError, match="unknown schema version") as info:
        SQLiteFeedbackStore(path)
    assert info.value.file == str(path) and info.value.got == SCHEMA_VERSION + 1
    assert _version(path) == SCHEMA_VERSION + 1  # left as it was


@pytest.mark.parametrize(
    ("ddl", "needle", "got"),
    [
        ("CREATE VIEW everyone AS SELECT * FROM feedback", "view its schema", "everyone"),
        ("CREATE TABLE notes (x)", "table its schema", "notes"),
        ("ALTER TABLE feedback ADD COLUMN copy TEXT", "other columns", "feedback"),
    ],
)
def test_a_store_with_objects_its_schema_does_not_define_is_refused(
    tmp_path: Path, ddl: str, needle: str, got: str
) -> None:
    path = _v0_copy(tmp_path)
    with _raw(path) as db:
        db.executescript(ddl)
    with pytest.raises(AuditError, match=needle) as info:
        SQLiteFeedbackStore(path)
    assert info.value.got == got and info.value.file == str(path)
    assert _version(path) == 0  # nothing migrated


def test_a_hostile_file_is_refused_before_a_key_is_made(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    with _raw(path) as db:
        db.execute("CREATE TABLE feedback (feedback_id TEXT)")
    with pytest.raises(AuditError, match="other columns"):
        SQLiteFeedbackStore(path)
    assert not default_store_key_file(path).exists()
    with _raw(path) as db:
        assert [n for (n,) in db.execute("SELECT name FROM sqlite_master")] == ["feedback"]


def test_a_file_that_is_not_a_database_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    path.write_bytes(b"not sqlite at all " * 64)
    with pytest.raises(AuditError, match="not a feedback store: file is not a database") as info:
        ReplayStore(path)
    assert info.value.file == str(path)
    assert "\n" not in info.value.one_line()
    assert path.read_bytes() == b"not sqlite at all " * 64


def test_a_store_that_lost_its_pseudonym_key_is_refused(tmp_path: Path) -> None:
    path, _, _ = _filled(tmp_path)
    with _raw(path) as db:
        db.execute("DELETE FROM store_secrets")
    with pytest.raises(AuditError, match="not its pseudonym key") as info:
        SQLiteFeedbackStore(path)  # not a new key: that would rename every person
    assert info.value.file == str(path)
    with _raw(path) as db:
        assert db.execute("SELECT COUNT(*) FROM store_secrets").fetchone() == (0,)


def test_a_previous_version_store_without_its_key_is_not_migrated(tmp_path: Path) -> None:
    path = _v0_copy(tmp_path)
    default_store_key_file(path).unlink()
    with pytest.raises(AuditError, match="store key missing"):
        ReplayStore(path)
    assert _version(path) == 0  # the migration shares the key check's transaction
    with _raw(path) as db:
        assert "replay_inputs_by_subject" not in {
            n for (n,) in db.execute("SELECT name FROM sqlite_master")
        }

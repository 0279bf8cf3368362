"""`SQLiteFeedbackStore` on real SQLite files: consent ledger, sealing, erasure, concurrency."""

from __future__ import annotations

import multiprocessing
import re
import sqlite3
import time
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from guarded_rl.consent.database import subject_key_label
from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
from guarded_rl.consent.store import (
    EVALUATION,
    FAIRNESS,
    TRAINING,
    StoredFeedback,
    consent_text_sha256,
)
from guarded_rl.consent.store_key import StoreKey, default_store_key_file, load_store_key
from guarded_rl.errors import AuditError, ConsentError, InputError
from guarded_rl.records import Feedback

TEXT_V1 = consent_text_sha256("We use your ratings to train the model. v1")
TEXT_V2 = consent_text_sha256("We use your ratings to train the model. v2")


def _store(tmp_path: Path, name: str = "feedback.sqlite") -> SQLiteFeedbackStore:
    return SQLiteFeedbackStore(tmp_path / name)


def _fb(sample_id: str, subject: str, reward: float = 0.5, group: str = "") -> Feedback:
    return Feedback(sample_id, subject, reward, "person", group)


def _row(
    feedback_id: str,
    subject: str,
    *,
    cycle: int | None = 0,
    comment: str | None = None,
    group: str | None = None,
    recorded_at: float | None = None,
) -> StoredFeedback:
    return StoredFeedback(
        feedback_id,
        subject,
        f"item-{feedback_id}",
        cycle,
        1.0,
        "person",
        (TRAINING,),
        time.time() if recorded_at is None else recorded_at,
        comment,
        group,
    )


def _row_aad(subject: str, feedback_id: str) -> bytes:
    return f"guarded-rl/feedback/{subject}/{feedback_id}".encode()


def _id_aad(subject: str) -> bytes:
    return f"guarded-rl/subject/{subject}".encode()


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


# -- pseudonyms ---------------------------------------------------------------------------


def test_pseudonyms_are_stable_per_store_and_differ_across_stores(tmp_path: Path) -> None:
    one = _store(tmp_path, "one.sqlite")
    two = _store(tmp_path, "two.sqlite")
    p = one.pseudonym("alice@example.org")
    assert re.fullmatch(r"p-[0-9a-f]{32}", p)
    assert one.pseudonym("alice@example.org") == p
    assert one.pseudonym("bob@example.org") != p
    assert two.pseudonym("alice@example.org") != p
    assert one.grant("alice@example.org", [TRAINING], text_sha256=TEXT_V1) == p
    one.close()
    two.close()
    reopened = _store(tmp_path, "one.sqlite")  # the HMAC key lives in the file
    assert reopened.pseudonym("alice@example.org") == p
    assert reopened.user_id_of(p) == "alice@example.org"
    reopened.close()


# -- consent ledger -----------------------------------------------------------------------


def test_grant_revoke_and_consents_record_text_and_times(tmp_path: Path) -> None:
    store = _store(tmp_path)
    before = time.time()
    subject = store.grant("carol", [TRAINING, EVALUATION, TRAINING], text_sha256=TEXT_V1)
    after = time.time()
    records = store.consents(subject)
    assert [c.purpose for c in records] == [EVALUATION, TRAINING]
    for c in records:
        assert c.text_sha256 == TEXT_V1
        assert before <= c.granted_at <= after
        assert c.revoked_at is None
        assert c.current
    assert store.known_subject(subject)
    assert store.has_consent(subject, TRAINING)
    assert store.has_consent(subject, EVALUATION)
    assert not store.has_consent(subject, FAIRNESS)

    assert store.revoke(subject, [EVALUATION, FAIRNESS]) == [EVALUATION]
    evaluation, training = store.consents(subject)
    assert evaluation.revoked_at is not None
    assert evaluation.granted_at <= evaluation.revoked_at <= time.time()
    assert not evaluation.current
    assert training.current
    assert not store.has_consent(subject, EVALUATION)
    assert store.has_consent(subject, TRAINING)

    # a new grant under a new text version replaces the old one and clears the revocation
    regranted_from = time.time()
    store.grant("carol", [EVALUATION, FAIRNESS], text_sha256=TEXT_V2)
    by_purpose = {c.purpose: c for c in store.consents(subject)}
    assert set(by_purpose) == {EVALUATION, FAIRNESS, TRAINING}
    assert by_purpose[EVALUATION].current
    assert by_purpose[EVALUATION].text_sha256 == TEXT_V2
    assert by_purpose[EVALUATION].granted_at >= regranted_from
    assert by_purpose[FAIRNESS].text_sha256 == TEXT_V2
    assert by_purpose[TRAINING].text_sha256 == TEXT_V1

    assert store.revoke(subject) == [EVALUATION, FAIRNESS, TRAINING]
    assert all(not c.current for c in store.consents(subject))
    assert store.revoke(subject) == []
    assert store.consents("p-" + "0" * 32) == []
    assert not store.known_subject("p-" + "0" * 32)
    store.close()


def test_unknown_or_missing_purpose_and_empty_id_are_input_errors(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(InputError, match="unknown purpose"):
        store.grant("dave", [TRAINING, "marketing"], text_sha256=TEXT_V1)
    assert store.consents(store.pseudonym("dave")) == []  # checked before anything is written
    assert store.user_id_of(store.pseudonym("dave")) is None
    with pytest.raises(InputError, match="no purpose"):
        store.grant("dave", [], text_sha256=TEXT_V1)
    with pytest.raises(InputError, match="empty user id"):
        store.grant("", [TRAINING], text_sha256=TEXT_V1)
    subject = store.grant("dave", [TRAINING], text_sha256=TEXT_V1)
    with pytest.raises(InputError, match="unknown purpose"):
        store.revoke(subject, ["marketing"])
    assert store.has_consent(subject, TRAINING)
    store.close()


# -- recording ----------------------------------------------------------------------------


def test_record_refuses_and_counts_feedback_without_training_consent(tmp_path: Path) -> None:
    store = _store(tmp_path)
    trained = store.grant("erin", [TRAINING], text_sha256=TEXT_V1)
    evaluation_only = store.grant("frank", [EVALUATION], text_sha256=TEXT_V1)
    revoked = store.grant("gina", [TRAINING], text_sha256=TEXT_V1)
    store.revoke(revoked)
    stranger = store.pseudonym("nobody")
    feedback = [
        _fb("s0", trained),
        _fb("s1", evaluation_only),
        _fb("s2", revoked),
        _fb("s3", stranger),
        _fb("s4", trained, -1.0),
    ]
    accepted, refused = store.record(feedback, purpose=TRAINING, cycle=7)
    assert accepted == [feedback[0], feedback[4]]
    assert refused == 3
    assert store.count() == 2
    assert store.existing_feedback_ids([f.sample_id for f in feedback]) == {"s0", "s4"}
    assert store.subject_rows(evaluation_only) == []
    assert store.subject_rows(stranger) == []
    rows = store.subject_rows(trained)
    assert [(r.feedback_id, r.item_id, r.cycle, r.reward, r.purposes) for r in rows] == [
        ("s0", "s0", 7, 0.5, (TRAINING,)),
        ("s4", "s4", 7, -1.0, (TRAINING,)),
    ]
    with pytest.raises(ConsentError):
        store.record([_fb("s5", trained)], purpose="", cycle=7)
    assert store.count() == 2
    store.close()


def test_group_is_kept_only_under_fairness_consent(tmp_path: Path) -> None:
    store = _store(tmp_path)
    fair = store.grant("hana", [TRAINING, FAIRNESS], text_sha256=TEXT_V1)
    plain = store.grant("ivan", [TRAINING], text_sha256=TEXT_V1)
    feedback = [_fb("a", fair, group="group-x"), _fb("b", plain, group="group-y")]
    accepted, refused = store.record(feedback, purpose=TRAINING, cycle=1)
    assert (accepted, refused) == (feedback, 0)
    assert store.training_feedback(1) == [
        Feedback("a", fair, 0.5, "person", "group-x"),
        Feedback("b", plain, 0.5, "person", ""),
    ]
    assert [r.group for r in store.subject_rows(fair)] == ["group-x"]
    assert [r.group for r in store.subject_rows(plain)] == [None]  # dropped, not hidden
    with _raw(tmp_path / "feedback.sqlite") as raw:
        sealed = dict(raw.execute("SELECT feedback_id, personal FROM feedback").fetchall())
    assert sealed["a"] is not None
    assert sealed["b"] is None
    assert b"group-x" not in sealed["a"]

    # withdrawing fairness-analysis hides the group from batches; granting it again shows it
    store.revoke(fair, [FAIRNESS])
    assert [f.group for f in store.training_feedback(1)] == ["", ""]
    store.grant("hana", [FAIRNESS], text_sha256=TEXT_V2)
    assert [f.group for f in store.training_feedback(1)] == ["group-x", ""]
    store.close()


def test_store_feedback_without_consent_stores_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ok = store.grant("jack", [TRAINING], text_sha256=TEXT_V1)
    evaluation_only = store.grant("kim", [EVALUATION], text_sha256=TEXT_V1)
    store.store_feedback([_row("old", ok)])
    rows = [_row("n1", ok), _row("n2", evaluation_only), _row("n3", ok)]
    with pytest.raises(ConsentError, match="no current 'training' consent"):
        store.store_feedback(rows)
    assert store.count() == 1
    assert store.existing_feedback_ids(["n1", "n2", "n3"]) == set()
    # the same row is fine under the purpose it has consent for
    assert store.store_feedback([_row("n2", evaluation_only)], purpose=EVALUATION) == 0
    assert store.count() == 2
    store.close()


def test_store_feedback_duplicate_id_stores_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ok = store.grant("lea", [TRAINING], text_sha256=TEXT_V1)
    store.store_feedback([_row("d1", ok)])
    with pytest.raises(InputError, match="already stored"):
        store.store_feedback([_row("d2", ok), _row("d1", ok)])  # clashes with a stored id
    assert store.count() == 1
    with pytest.raises(InputError, match="already stored"):
        store.store_feedback([_row("d3", ok), _row("d3", ok)])  # clashes within the batch
    assert store.count() == 1
    assert store.existing_feedback_ids(["d1", "d2", "d3"]) == {"d1"}
    store.close()


def test_store_feedback_returns_groups_dropped(tmp_path: Path) -> None:
    store = _store(tmp_path)
    fair = store.grant("mia", [TRAINING, FAIRNESS], text_sha256=TEXT_V1)
    plain = store.grant("noah", [TRAINING], text_sha256=TEXT_V1)
    dropped = store.store_feedback(
        [
            _row("g1", fair, group="g-fair"),
            _row("g2", plain, group="g-plain"),
            _row("g3", plain, comment="nice", group="g-plain"),
            _row("g4", plain),
        ]
    )
    assert dropped == 2
    assert [(r.comment, r.group) for r in store.subject_rows(plain)] == [
        (None, None),
        ("nice", None),
        (None, None),
    ]
    store.close()


def test_training_feedback_leaves_out_subjects_who_revoked_after_recording(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    stays = store.grant("olga", [TRAINING], text_sha256=TEXT_V1)
    leaves = store.grant("pete", [TRAINING], text_sha256=TEXT_V1)
    accepted, refused = store.record(
        [_fb("r1", stays), _fb("r2", leaves), _fb("r3", stays)], purpose=TRAINING, cycle=2
    )
    assert (len(accepted), refused) == (3, 0)
    store.record([_fb("r4", leaves)], purpose=TRAINING, cycle=3)
    assert [f.sample_id for f in store.training_feedback(2)] == ["r1", "r2", "r3"]
    store.revoke(leaves, [TRAINING])
    assert [f.sample_id for f in store.training_feedback(2)] == ["r1", "r3"]
    assert store.training_feedback(3) == []
    assert [r.feedback_id for r in store.batch_rows()] == ["r1", "r3"]
    assert store.count() == 4  # revocation alone does not delete; erasure does
    store.close()


def test_batch_rows_order_limit_and_cycle(tmp_path: Path) -> None:
    store = _store(tmp_path)
    subject = store.grant("quin", [TRAINING, EVALUATION], text_sha256=TEXT_V1)
    t0 = time.time()
    store.store_feedback(
        [_row(f"b{i}", subject, cycle=i % 2, recorded_at=t0 + i) for i in range(6)]
    )
    assert [r.feedback_id for r in store.batch_rows()] == [f"b{i}" for i in range(6)]
    assert [r.feedback_id for r in store.batch_rows(limit=2)] == ["b0", "b1"]
    assert [r.feedback_id for r in store.batch_rows(cycle=1)] == ["b1", "b3", "b5"]
    assert len(store.batch_rows(purpose=EVALUATION)) == 6
    assert store.batch_rows(purpose=FAIRNESS) == []
    store.close()


def test_subject_rows_open_comment_and_group(tmp_path: Path) -> None:
    store = _store(tmp_path)
    subject = store.grant("rita", [TRAINING, FAIRNESS], text_sha256=TEXT_V1)
    other = store.grant("sam", [TRAINING, FAIRNESS], text_sha256=TEXT_V1)
    t0 = time.time()
    store.store_feedback(
        [
            _row("c1", subject, comment="too long, but funny", group="g-1", recorded_at=t0),
            _row("c2", other, comment="someone else", group="g-2", recorded_at=t0 + 1),
            _row("c3", subject, comment="ünïcødé ✓", recorded_at=t0 + 2),
        ]
    )
    rows = store.subject_rows(subject)
    assert [(r.feedback_id, r.comment, r.group) for r in rows] == [
        ("c1", "too long, but funny", "g-1"),
        ("c3", "ünïcødé ✓", None),
    ]
    # batches never carry the comment, and groups only when asked for
    assert all(r.comment is None and r.group is None for r in store.batch_rows())
    assert {r.group for r in store.batch_rows(with_group=True)} == {"g-1", "g-2", None}
    with _raw(tmp_path / "feedback.sqlite") as raw:
        blobs = b"".join(p for (p,) in raw.execute("SELECT personal FROM feedback") if p)
    assert b"funny" not in blobs
    assert "ünïcødé".encode() not in blobs
    store.close()


# -- integrity ----------------------------------------------------------------------------


def _flip(blob: bytes, at: int) -> bytes:
    changed = bytearray(blob)
    changed[at] ^= 0x01
    return bytes(changed)


def test_tampered_ciphertext_raises_audit_error(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    store = SQLiteFeedbackStore(path)
    subject = store.grant("tara", [TRAINING, FAIRNESS], text_sha256=TEXT_V1)
    store.store_feedback([_row("t1", subject, comment="hello", group="g", cycle=4)])
    assert store.subject_rows(subject)[0].comment == "hello"
    with _raw(path) as raw:
        (personal,) = raw.execute(
            "SELECT personal FROM feedback WHERE feedback_id = 't1'"
        ).fetchone()
        raw.execute(
            "UPDATE feedback SET personal = ? WHERE feedback_id = 't1'", (_flip(personal, 5),)
        )
    with pytest.raises(AuditError, match="does not authenticate"):
        store.subject_rows(subject)
    with pytest.raises(AuditError, match="does not authenticate"):
        store.training_feedback(4)

    # the sealed external id is protected the same way
    assert store.user_id_of(subject) == "tara"
    with _raw(path) as raw:
        (sealed,) = raw.execute("SELECT sealed_id FROM subjects").fetchone()
        raw.execute("UPDATE subjects SET sealed_id = ?", (_flip(sealed, 0),))
    with pytest.raises(AuditError):
        store.user_id_of(subject)
    store.close()


def test_ciphertext_moved_to_another_row_raises_audit_error(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    store = SQLiteFeedbackStore(path)
    subject = store.grant("uma", [TRAINING], text_sha256=TEXT_V1)
    store.store_feedback([_row("m1", subject, comment="first"), _row("m2", subject, comment="x")])
    with _raw(path) as raw:
        nonce, personal = raw.execute(
            "SELECT nonce, personal FROM feedback WHERE feedback_id = 'm1'"
        ).fetchone()
        raw.execute(
            "UPDATE feedback SET nonce = ?, personal = ? WHERE feedback_id = 'm2'",
            (nonce, personal),
        )
    with pytest.raises(AuditError):
        store.subject_rows(subject)
    store.close()


# -- erasure and retention ----------------------------------------------------------------

ERASED_USER = "erase-me-Q7xZ31@example.org"
ERASED_COMMENT = "comment-zebra-marmalade-4417"
ERASED_GROUP = "group-quokka-8812"


def test_erase_subject_crypto_shreds_and_leaves_no_trace(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    store = SQLiteFeedbackStore(path)
    target = store.grant(ERASED_USER, [TRAINING, EVALUATION, FAIRNESS], text_sha256=TEXT_V1)
    keep = store.grant("keep-me@example.org", [TRAINING, FAIRNESS], text_sha256=TEXT_V1)
    store.record(
        [_fb("e1", target, group=ERASED_GROUP), _fb("k1", keep, group="group-kept")],
        purpose=TRAINING,
        cycle=0,
    )
    store.store_feedback(
        [
            _row("e2", target, comment=ERASED_COMMENT, group=ERASED_GROUP),
            _row("e3", target, comment=ERASED_COMMENT * 3),
            _row("k2", keep, comment="kept comment", group="group-kept"),
        ]
    )
    assert store.user_id_of(target) == ERASED_USER
    assert [r.comment for r in store.subject_rows(target)][1:] == [
        ERASED_COMMENT,
        ERASED_COMMENT * 3,
    ]

    # copy the target's ciphertexts and key out of the db before erasure
    with _raw(path) as raw:
        sealed_rows = raw.execute(
            "SELECT feedback_id, nonce, personal FROM feedback WHERE subject = ? "
            "AND personal IS NOT NULL",
            (target,),
        ).fetchall()
        id_nonce, sealed_id = raw.execute(
            "SELECT nonce, sealed_id FROM subjects WHERE subject = ?", (target,)
        ).fetchone()
        (wrapped_key,) = raw.execute(
            "SELECT key FROM subject_keys WHERE subject = ?", (target,)
        ).fetchone()
    # the key is stored wrapped: the attacker of this test also holds the store key file
    store_key = load_store_key(default_store_key_file(path))
    target_key = store_key.unwrap(wrapped_key, subject_key_label(target), store=str(path))
    assert len(sealed_rows) == 3
    for feedback_id, nonce, personal in sealed_rows:  # the copies are real, readable ciphertext
        AESGCM(target_key).decrypt(nonce, personal, _row_aad(target, feedback_id))
    assert AESGCM(target_key).decrypt(id_nonce, sealed_id, _id_aad(target)) == ERASED_USER.encode()

    erasure = store.erase_subject(target)
    assert erasure.subject == target
    assert erasure.feedback_rows == 3
    assert erasure.replay_rows == 0
    assert erasure.key_destroyed
    assert erasure.trained_cycles == ()

    assert store.user_id_of(target) is None
    assert store.subject_rows(target) == []
    assert store.existing_feedback_ids(["e1", "e2", "e3", "k1", "k2"]) == {"k1", "k2"}
    assert store.count() == 2
    assert [f.sample_id for f in store.training_feedback(0)] == ["k1", "item-k2"]  # item ids
    assert all(r.subject != target for r in store.batch_rows())
    # the other subject is untouched
    assert store.user_id_of(keep) == "keep-me@example.org"
    assert [(r.comment, r.group) for r in store.subject_rows(keep)] == [
        (None, "group-kept"),
        ("kept comment", "group-kept"),
    ]
    assert store.erase_subject(target).feedback_rows == 0
    store.close()

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    needles = {
        "user id": ERASED_USER.encode(),
        "comment": ERASED_COMMENT.encode(),
        "group": ERASED_GROUP.encode(),
        "subject key": bytes(target_key),
        "sealed id": bytes(sealed_id),
    }
    for file in files:
        content = file.read_bytes()
        for what, needle in needles.items():
            assert needle not in content, f"{what} survives in {file.name}"

    with _raw(path) as raw:
        keys = [
            store_key.unwrap(bytes(k), subject_key_label(who), store=str(path))
            for (who, k) in raw.execute("SELECT subject, key FROM subject_keys")
        ]
    assert keys  # the other subject's key remains: try it and every other key
    for key in keys:
        for feedback_id, nonce, personal in sealed_rows:
            with pytest.raises(InvalidTag):
                AESGCM(key).decrypt(nonce, personal, _row_aad(target, feedback_id))
        with pytest.raises(InvalidTag):
            AESGCM(key).decrypt(id_nonce, sealed_id, _id_aad(target))


def test_purge_expired_deletes_only_old_rows(tmp_path: Path) -> None:
    store = _store(tmp_path)
    subject = store.grant("vera", [TRAINING], text_sha256=TEXT_V1)
    now = 1_700_000_000.0
    day = 86400.0
    store.store_feedback(
        [
            _row("x-100d", subject, recorded_at=now - 100 * day),
            _row("x-31d", subject, recorded_at=now - 31 * day),
            _row("x-29d", subject, recorded_at=now - 29 * day),
            _row("x-1d", subject, comment="recent", recorded_at=now - day),
            _row("x-now", subject, recorded_at=now),
        ]
    )
    assert store.purge_expired(30, now=now) == 2
    assert [r.feedback_id for r in store.subject_rows(subject)] == ["x-29d", "x-1d", "x-now"]
    assert store.subject_rows(subject)[1].comment == "recent"
    assert store.purge_expired(30, now=now) == 0
    assert store.purge_expired(0, now=now + day) == 3
    assert store.count() == 0
    assert store.has_consent(subject, TRAINING)  # retention deletes feedback, not consent
    store.close()


# -- concurrency --------------------------------------------------------------------------

WORKERS = 4
ROWS_PER_WORKER = 150
BATCH = 10


def _record_worker(path: str, worker: int, subjects: list[str], start: object) -> None:
    """Runs in a spawned process: record ROWS_PER_WORKER rows in batches of BATCH."""
    store = SQLiteFeedbackStore(path)
    start.wait(timeout=60)  # type: ignore[attr-defined]
    for b in range(ROWS_PER_WORKER // BATCH):
        batch = [
            Feedback(
                f"w{worker}-b{b}-{i}",
                subjects[(worker + b * BATCH + i) % len(subjects)],
                0.25,
                "person",
                f"g{i % 3}",
            )
            for i in range(BATCH)
        ]
        accepted, refused = store.record(batch, purpose=TRAINING, cycle=b)
        if refused or len(accepted) != BATCH:
            raise RuntimeError(f"worker {worker} batch {b}: {refused} refused")
    store.close()


def test_processes_record_concurrently_into_one_store(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    store = SQLiteFeedbackStore(path)
    subjects = [
        store.grant(f"user-{i}", [TRAINING, FAIRNESS] if i % 2 else [TRAINING], text_sha256=TEXT_V1)
        for i in range(12)
    ]
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(WORKERS)
    procs = [
        ctx.Process(target=_record_worker, args=(str(path), w, subjects, start))
        for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    for p in procs:
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0] * WORKERS

    expected = {
        f"w{w}-b{b}-{i}"
        for w in range(WORKERS)
        for b in range(ROWS_PER_WORKER // BATCH)
        for i in range(BATCH)
    }
    assert store.count() == WORKERS * ROWS_PER_WORKER == 600
    assert store.existing_feedback_ids(sorted(expected)) == expected
    assert {r.feedback_id for r in store.batch_rows()} == expected
    assert sum(len(store.training_feedback(b)) for b in range(ROWS_PER_WORKER // BATCH)) == 600
    groups = {f.group for f in store.training_feedback(0)}
    assert groups == {"", "g0", "g1", "g2"}  # only subjects with fairness consent keep them
    with _raw(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store.close()


def test_a_store_in_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open the feedback store") as info:
        SQLiteFeedbackStore(tmp_path / "no-such-folder" / "feedback.sqlite")
    assert "no-such-folder" in str(info.value)
    assert not (tmp_path / "no-such-folder").exists()


# -- a copy of the database alone reveals nothing (issue 15, item 17) ------------------------


def _filled(tmp_path: Path) -> tuple[Path, Path, str]:
    path, key_file = tmp_path / "feedback.sqlite", tmp_path / "secrets" / "store.key"
    key_file.parent.mkdir()
    store = SQLiteFeedbackStore(path, key_file=key_file)
    subject = store.grant("alice@example.org", [TRAINING, FAIRNESS], text_sha256=TEXT_V1)
    store.store_feedback([_row("a1", subject, comment="private words", group="group-a")])
    store.close()
    return path, key_file, subject


def test_store_and_its_wal_are_private_from_creation(tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o022)
    try:
        path, key_file, _ = _filled(tmp_path)
        store = SQLiteFeedbackStore(path, key_file=key_file)  # WAL and SHM exist while open
        for name in ("feedback.sqlite", "feedback.sqlite-wal", "feedback.sqlite-shm"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        store.close()
    finally:
        os.umask(old)


def test_a_copy_of_the_database_alone_decrypts_nothing(tmp_path: Path) -> None:
    path, key_file, subject = _filled(tmp_path)
    store = SQLiteFeedbackStore(path, key_file=key_file)
    raw_key = store._key(subject, create=False)
    pseudonym_key = store._pseudonym_key
    store.close()
    wal = tmp_path / "feedback.sqlite-wal"
    data = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert raw_key is not None and raw_key not in data and pseudonym_key not in data
    with _raw(path) as db:
        (wrapped,) = db.execute(
            "SELECT key FROM subject_keys WHERE subject = ?", (subject,)
        ).fetchone()
    with pytest.raises(AuditError, match="store key does not open"):
        StoreKey.ephemeral().unwrap(wrapped, subject_key_label(subject), store=str(path))
    copy = tmp_path / "copy" / "feedback.sqlite"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    with pytest.raises(AuditError, match="store key missing"):  # fail closed, no new key
        SQLiteFeedbackStore(copy)
    assert not default_store_key_file(copy).exists()
    with pytest.raises(AuditError, match="store key missing"):
        SQLiteFeedbackStore(path)  # the run's store without its key file


def test_a_new_store_gets_a_random_id(tmp_path: Path) -> None:
    one = SQLiteFeedbackStore(tmp_path / "a.sqlite")
    two = SQLiteFeedbackStore(tmp_path / "b.sqlite")
    assert one.store_id and two.store_id and one.store_id != two.store_id
    first = one.store_id
    one.close()
    assert SQLiteFeedbackStore(tmp_path / "a.sqlite").store_id == first

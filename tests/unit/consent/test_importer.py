"""`import_feedback` on a real SQLite store: every line checked first, then one transaction."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guarded_rl.consent.importer import ImportedFeedback, ImportReport, import_feedback
from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
from guarded_rl.consent.store import (
    EVALUATION,
    FAIRNESS,
    MAX_COMMENT_CHARS,
    TRAINING,
    consent_text_sha256,
)
from guarded_rl.errors import InputError

TEXT = consent_text_sha256("We use your ratings to train the model.")
ITEMS = ["item-0", "item-1", "item-2"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteFeedbackStore]:
    s = SQLiteFeedbackStore(tmp_path / "feedback.sqlite")
    s.register_items(ITEMS, cycle=0)
    s.grant("alice@example.org", [TRAINING, FAIRNESS], text_sha256=TEXT)
    s.grant("bob@example.org", [TRAINING, EVALUATION], text_sha256=TEXT)
    s.grant("erin@example.org", [EVALUATION], text_sha256=TEXT)  # no training consent
    yield s
    s.close()


def _line(n: int, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"fb-{n}",
        "user_id": "alice@example.org",
        "item_id": ITEMS[n % len(ITEMS)],
        "reward": 0.5,
        "purposes": [TRAINING],
    }
    row.update(overrides)
    return row


def _write(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


def _fails_at(store: SQLiteFeedbackStore, path: Path, line: int, *needles: str) -> InputError:
    before = store.count()
    with pytest.raises(InputError) as info:
        import_feedback(store, path, skip_invalid=False)
    text = info.value.one_line()
    assert info.value.file == f"{path}:{line}", text
    for needle in needles:
        assert needle in text, text
    assert store.count() == before
    return info.value


def test_a_good_file_stores_every_row_with_personal_fields_sealed(
    store: SQLiteFeedbackStore, tmp_path: Path
) -> None:
    alice, bob = store.pseudonym("alice@example.org"), store.pseudonym("bob@example.org")
    path = _write(
        tmp_path / "good.jsonl",
        [
            _line(0, comment="clear and useful", group="north", recorded_at=1_700_000_000.5),
            "",
            _line(1, user_id="bob@example.org", reward=-1, purposes=[TRAINING, EVALUATION]),
            "   ",
            _line(2, reward=1.0, comment="", group=None),
        ],
    )
    started = time.time()
    report = import_feedback(store, path, skip_invalid=False)
    assert isinstance(report, ImportReport)
    assert report.stored == 3
    assert report.refused == []
    assert report.groups_dropped == 0
    assert report.subjects == 2
    assert report.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert store.count() == 3

    rows = {r.feedback_id: r for r in store.subject_rows(alice)}
    assert set(rows) == {"fb-0", "fb-2"}
    first = rows["fb-0"]
    assert (first.item_id, first.reward, first.cycle, first.source) == (
        "item-0",
        0.5,
        None,
        "person",
    )
    assert (first.comment, first.group, first.recorded_at) == (
        "clear and useful",
        "north",
        1_700_000_000.5,
    )
    assert first.purposes == (TRAINING,)
    assert rows["fb-2"].comment is None and rows["fb-2"].group is None
    assert started <= rows["fb-2"].recorded_at <= time.time()
    (bobs,) = store.subject_rows(bob)
    assert (bobs.feedback_id, bobs.reward, bobs.purposes) == ("fb-1", -1.0, (TRAINING, EVALUATION))

    # sealed at rest: neither the comment, the group nor a user id is in the database file
    with sqlite3.connect(store.path) as raw:
        dump = "\n".join(raw.iterdump())
    for secret in ("clear and useful", "north", "alice@example.org", "bob@example.org"):
        assert secret not in dump


BAD_LINES: list[tuple[str, str, tuple[str, ...]]] = [
    ("nan", '{"id":"x","user_id":"alice@example.org","item_id":"item-0","reward":NaN,'
     '"purposes":["training"]}', ("reward", "finite")),
    ("infinity", '{"id":"x","user_id":"alice@example.org","item_id":"item-0",'
     '"reward":-Infinity,"purposes":["training"]}', ("reward", "finite")),
    ("out_of_range", json.dumps(_line(9, reward=3)), ("reward = 3", "-1 to 1")),
    ("bool_reward", json.dumps(_line(9, reward=True)), ("reward", "valid number")),
    ("unknown_item", json.dumps(_line(9, item_id="item-404")), ("item_id = 'item-404'",
     "unknown item")),
    ("no_consent", json.dumps(_line(9, user_id="erin@example.org")), ("user_id",
     "no current 'training' consent")),
    ("never_granted", json.dumps(_line(9, user_id="zed@example.org")), ("user_id", "consent")),
    ("stored_id", json.dumps(_line(9, id="fb-stored")), ("id = 'fb-stored'", "already stored")),
    ("oversized_comment", json.dumps(_line(9, comment="x" * (MAX_COMMENT_CHARS + 1))),
     ("comment", f"at most {MAX_COMMENT_CHARS}")),
    ("oversized_group", json.dumps(_line(9, group="g" * 65)), ("group", "at most 64")),
    ("invalid_json", '{"id": "x", "reward": ', ("invalid JSON",)),
    ("not_an_object", "[1, 2, 3]", ("not a JSON object",)),
    ("missing_field", json.dumps({k: v for k, v in _line(9).items() if k != "reward"}),
     ("reward", "missing field")),
    ("unknown_field", json.dumps(_line(9, rating=4)), ("rating", "unknown field")),
    ("no_training_purpose", json.dumps(_line(9, purposes=[EVALUATION])),
     ("purposes", "'training'")),
    ("unknown_purpose", json.dumps(_line(9, purposes=[TRAINING, "marketing"])),
     ("purposes", "'marketing'")),
    ("empty_purposes", json.dumps(_line(9, purposes=[])), ("purposes",)),
    ("unconsented_purpose", json.dumps(_line(9, purposes=[TRAINING, EVALUATION])),
     ("purposes", "no current consent for: evaluation")),
    ("empty_id", json.dumps(_line(9, id="")), ("id",)),
    ("long_user_id", json.dumps(_line(9, user_id="u" * 201)), ("user_id", "200")),
    ("future_time", json.dumps(_line(9, recorded_at=time.time() * 1000)),
     ("recorded_at", "future")),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "bad", "needles"), BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_each_bad_line_stops_the_import_at_its_line_and_stores_nothing(
    store: SQLiteFeedbackStore, tmp_path: Path, kind: str, bad: str, needles: tuple[str, ...]
) -> None:
    _write(tmp_path / "first.jsonl", [_line(50, id="fb-stored")])
    import_feedback(store, tmp_path / "first.jsonl", skip_invalid=False)
    assert store.count() == 1
    path = _write(tmp_path / "bad.jsonl", [_line(0), "", _line(1), bad, _line(2)])
    error = _fails_at(store, path, 4, *needles)
    assert error.exit_code == 2


def test_errors_never_echo_personal_values(store: SQLiteFeedbackStore, tmp_path: Path) -> None:
    secret = "my address is 1 Main Street " * 80
    path = _write(tmp_path / "bad.jsonl", [_line(0, comment=secret)])
    error = _fails_at(store, path, 1, "comment", f"got {len(secret)} characters")
    assert "Main Street" not in error.one_line()
    path = _write(tmp_path / "bad2.jsonl", [_line(0, user_id="carol@example.org")])
    error = _fails_at(store, path, 1, "user_id")
    assert "carol" not in error.one_line()


def test_duplicate_id_in_the_file_names_both_lines(
    store: SQLiteFeedbackStore, tmp_path: Path
) -> None:
    path = _write(tmp_path / "dup.jsonl", [_line(0), _line(1), _line(2, id="fb-0")])
    _fails_at(store, path, 3, "id = 'fb-0'", "duplicate feedback id (first on line 1)")


def test_the_first_bad_line_is_reported_whatever_check_finds_it(
    store: SQLiteFeedbackStore, tmp_path: Path
) -> None:
    # line 2 fails a store lookup, line 3 the schema: line 2 is the one reported
    path = _write(tmp_path / "two.jsonl", [_line(0), _line(1, item_id="nope"), _line(2, reward=9)])
    _fails_at(store, path, 2, "unknown item")


def test_skip_invalid_stores_the_good_lines_and_reports_the_bad(
    store: SQLiteFeedbackStore, tmp_path: Path
) -> None:
    _write(tmp_path / "first.jsonl", [_line(50, id="fb-stored")])
    import_feedback(store, tmp_path / "first.jsonl", skip_invalid=False)
    path = _write(
        tmp_path / "mixed.jsonl",
        [
            _line(0),  # 1 good
            _line(1, reward=float("nan")),  # 2 (json.dumps writes NaN)
            "not json",  # 3
            "",  # 4 blank: skipped, not refused
            _line(2, user_id="bob@example.org"),  # 5 good
            _line(3, id="fb-0"),  # 6 duplicate of line 1
            _line(4, id="fb-stored"),  # 7 already stored
            _line(5, item_id="item-404"),  # 8 unknown item
            _line(6, user_id="erin@example.org"),  # 9 no training consent
            _line(7, extra=True),  # 10 unknown field
            _line(8),  # 11 good
        ],
    )
    report = import_feedback(store, path, skip_invalid=True)
    assert report.stored == 3
    assert report.subjects == 2
    assert [n for n, _ in report.refused] == [2, 3, 6, 7, 8, 9, 10]
    reasons = dict(report.refused)
    assert reasons[2].startswith("reward = nan")
    assert "invalid JSON" in reasons[3]
    assert "first on line 1" in reasons[6]
    assert "already stored" in reasons[7]
    assert "unknown item" in reasons[8]
    assert "consent" in reasons[9]
    assert reasons[10].startswith("extra: unknown field")
    assert all("erin" not in r for r in reasons.values())
    assert store.count() == 1 + 3
    assert store.existing_feedback_ids(["fb-0", "fb-2", "fb-8", "fb-1", "fb-6"]) == {
        "fb-0",
        "fb-2",
        "fb-8",
    }


def test_skip_invalid_with_no_good_line_stores_nothing_and_says_so(
    store: SQLiteFeedbackStore, tmp_path: Path
) -> None:
    path = _write(tmp_path / "all_bad.jsonl", ["{", _line(0, reward=2)])
    report = import_feedback(store, path, skip_invalid=True)
    assert report.stored == 0
    assert [n for n, _ in report.refused] == [1, 2]
    assert report.subjects == 0
    assert store.count() == 0


def test_an_empty_file_stores_nothing(store: SQLiteFeedbackStore, tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.jsonl", ["", "  "])
    for skip in (False, True):
        report = import_feedback(store, path, skip_invalid=skip)
        assert (report.stored, report.refused) == (0, [])
    assert store.count() == 0


def test_groups_are_dropped_for_people_without_fairness_consent(
    store: SQLiteFeedbackStore, tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "groups.jsonl",
        [
            _line(0, group="north"),  # alice: fairness-analysis consent
            _line(1, user_id="bob@example.org", group="south"),  # bob: training only
            _line(2, user_id="bob@example.org", group="east", comment="kept"),
            _line(3, user_id="bob@example.org"),  # no group: nothing to drop
        ],
    )
    report = import_feedback(store, path, skip_invalid=False)
    assert (report.stored, report.groups_dropped) == (4, 2)
    (alices,) = store.subject_rows(store.pseudonym("alice@example.org"))
    assert alices.group == "north"
    bobs = {r.feedback_id: r for r in store.subject_rows(store.pseudonym("bob@example.org"))}
    assert [bobs[i].group for i in ("fb-1", "fb-2", "fb-3")] == [None, None, None]
    assert bobs["fb-2"].comment == "kept"


def test_a_revoked_consent_refuses_the_person(store: SQLiteFeedbackStore, tmp_path: Path) -> None:
    store.revoke(store.pseudonym("bob@example.org"), [TRAINING])
    path = _write(tmp_path / "bob.jsonl", [_line(0, user_id="bob@example.org")])
    _fails_at(store, path, 1, "no current 'training' consent")


def test_unreadable_files_name_the_file(store: SQLiteFeedbackStore, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(InputError, match="no such file") as info:
        import_feedback(store, missing, skip_invalid=True)
    assert info.value.file == str(missing)
    with pytest.raises(InputError, match="is a directory"):
        import_feedback(store, tmp_path, skip_invalid=True)
    latin = tmp_path / "latin1.jsonl"
    latin.write_bytes(json.dumps(_line(0)).encode() + b"\n" + b'{"comment": "caf\xe9"}\n')
    with pytest.raises(InputError, match="not UTF-8") as info:
        import_feedback(store, latin, skip_invalid=True)
    assert info.value.file == f"{latin}:2"
    assert store.count() == 0


def test_the_model_refuses_what_json_lets_through() -> None:
    base = _line(0)
    for reward in (math.nan, math.inf, -math.inf, 1.0000001, -1.5):
        with pytest.raises(ValueError):
            ImportedFeedback.model_validate({**base, "reward": reward})
    model = ImportedFeedback.model_validate({**base, "purposes": [TRAINING, FAIRNESS, TRAINING]})
    assert model.purposes == [TRAINING, FAIRNESS]
    assert ImportedFeedback.model_validate({**base, "reward": -1}).reward == -1.0

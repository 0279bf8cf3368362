"""`feedback import` through its typer app, on a real run directory.

One short real run is made per module; each test works on its own copy (with its key file,
which lives next to the run directory).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from guarded_rl.audit.history import RunHistory
from guarded_rl.cli import feedback_cmd
from guarded_rl.commands import consent as run_consent
from guarded_rl.commands.verify import verify_run
from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
from guarded_rl.errors import AuditError, InputError
from guarded_rl.rundir.paths import RunPaths

ALICE = "alice@example.org"  # training + fairness-analysis
BOB = "bob@example.org"  # training only
COMMENT = "the second sentence repeats the first"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from guarded_rl.policy import GuardPolicy
    from guarded_rl.runner import RunConfig, run

    run_dir = tmp_path_factory.mktemp("pristine") / "run"
    run(RunConfig(run_dir=str(run_dir), cycles=1, users_per_cycle=4), GuardPolicy())
    run_consent.grant(run_dir, ALICE, ["training", "fairness-analysis"])
    run_consent.grant(run_dir, BOB, ["training"])
    return run_dir


@pytest.fixture
def run_dir(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(pristine, target)
    from guarded_rl.rundir.paths import RunPaths

    key = RunPaths(pristine).recorded_key_file()
    shutil.copy2(key, tmp_path / "run.key")
    toml = (target / "run.toml").read_text()
    (target / "run.toml").write_text(toml.replace(str(key), str(tmp_path / "run.key")))
    return target


def _items(run_dir: Path) -> list[str]:
    with sqlite3.connect(run_dir / "feedback.sqlite") as db:
        return [i for (i,) in db.execute("SELECT item_id FROM items ORDER BY item_id")]


def _rows(run_dir: Path) -> int:
    store = SQLiteFeedbackStore(
        run_dir / "feedback.sqlite", key_file=RunPaths(run_dir).recorded_store_key_file()
    )
    try:
        return store.count()
    finally:
        store.close()


def _line(run_dir: Path, n: int, **overrides: Any) -> str:
    items = _items(run_dir)
    row: dict[str, Any] = {
        "id": f"import-{n}",
        "user_id": ALICE,
        "item_id": items[n % len(items)],
        "reward": 0.25,
        "purposes": ["training"],
    }
    row.update(overrides)
    return json.dumps(row)


def _invoke(*args: str):
    return CliRunner().invoke(feedback_cmd.app, ["import", *args])


def _imports(run_dir: Path) -> list[dict[str, Any]]:
    return [e.payload for e in RunHistory.load(run_dir).entries if e.type == "feedback_imported"]


def test_import_stores_logs_without_personal_data_and_the_log_verifies(
    run_dir: Path, tmp_path: Path
) -> None:
    before = _rows(run_dir)
    path = tmp_path / "ratings.jsonl"
    path.write_text(
        "\n".join(
            [
                _line(run_dir, 0, comment=COMMENT, group="g-nordic-7f"),
                _line(run_dir, 1, user_id=BOB, group="g-austral-3c", reward=-0.5),
                _line(run_dir, 2),
            ]
        )
        + "\n"
    )
    result = _invoke(str(run_dir), str(path))
    assert result.exit_code == 0, (result.output, result.exception)
    assert f"stored 3 rows from {path}; refused 0" in result.stdout
    assert "group dropped on 1 rows" in result.stdout
    assert result.stderr == ""
    assert _rows(run_dir) == before + 3

    (entry,) = _imports(run_dir)
    assert entry == {
        "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "stored": 3,
        "refused": 0,
        "refused_lines": [],
        "groups_dropped": 1,
        "subjects": 2,
    }
    log = (run_dir / "audit.jsonl").read_text()
    for personal in (ALICE, BOB, COMMENT, "g-nordic-7f", "g-austral-3c"):
        assert personal not in log
    report = verify_run(run_dir)
    assert report.ok, report.failure

    exported = run_consent.export(run_dir, ALICE)
    rows = {r["feedback_id"]: r for r in exported["feedback"]}
    assert rows["import-0"]["comment"] == COMMENT
    assert rows["import-0"]["group"] == "g-nordic-7f"
    assert rows["import-0"]["cycle"] is None


def test_a_bad_line_stops_the_import_and_changes_nothing(run_dir: Path, tmp_path: Path) -> None:
    before = _rows(run_dir)
    log_before = (run_dir / "audit.jsonl").read_bytes()
    path = tmp_path / "ratings.jsonl"
    path.write_text(
        "\n".join([_line(run_dir, 0), _line(run_dir, 1, reward=3), _line(run_dir, 2)]) + "\n"
    )
    result = _invoke(str(run_dir), str(path))
    assert isinstance(result.exception, InputError), result.output
    assert result.exception.exit_code == 2
    assert result.exception.file == f"{path}:2"
    assert "reward = 3" in result.exception.one_line()
    assert _rows(run_dir) == before
    assert (run_dir / "audit.jsonl").read_bytes() == log_before


def test_skip_invalid_stores_the_good_lines_and_lists_the_refused(
    run_dir: Path, tmp_path: Path
) -> None:
    before = _rows(run_dir)
    path = tmp_path / "ratings.jsonl"
    path.write_text(
        "\n".join(
            [
                _line(run_dir, 0),
                _line(run_dir, 1, user_id="mallory@example.org", comment=COMMENT),
                "",
                _line(run_dir, 2, item_id="not-an-item"),
                _line(run_dir, 3, user_id=BOB),
                "{oops",
                _line(run_dir, 4, reward="NaN"),
            ]
        )
        + "\n"
    )
    result = _invoke(str(run_dir), str(path), "--skip-invalid")
    assert result.exit_code == 0, (result.output, result.exception)
    assert f"stored 2 rows from {path}; refused 4" in result.stdout
    refused = result.stderr.strip().splitlines()
    assert [r.split(":")[0] for r in refused] == ["line 2", "line 4", "line 6", "line 7"]
    assert refused[0].startswith("line 2: user_id:")
    assert refused[3].startswith("line 7: reward = 'NaN':")
    assert "mallory" not in result.output and COMMENT not in result.output
    assert _rows(run_dir) == before + 2

    (entry,) = _imports(run_dir)
    assert (entry["stored"], entry["refused"], entry["refused_lines"]) == (2, 4, [2, 4, 6, 7])
    assert "mallory" not in (run_dir / "audit.jsonl").read_text()
    assert verify_run(run_dir).ok


def test_importing_the_same_file_twice_refuses_every_id(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "ratings.jsonl"
    path.write_text(_line(run_dir, 0) + "\n" + _line(run_dir, 1) + "\n")
    assert _invoke(str(run_dir), str(path)).exit_code == 0
    again = _invoke(str(run_dir), str(path), "--skip-invalid")
    assert again.exit_code == 0
    assert "stored 0 rows" in again.stdout and "refused 2" in again.stdout
    assert "already stored" in again.stderr
    assert "nothing was stored" in again.stderr
    assert [e["stored"] for e in _imports(run_dir)] == [2, 0]
    assert verify_run(run_dir).ok


def test_an_empty_file_stores_and_logs_nothing(run_dir: Path, tmp_path: Path) -> None:
    log_before = (run_dir / "audit.jsonl").read_bytes()
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    result = _invoke(str(run_dir), str(path))
    assert result.exit_code == 0
    assert "stored 0 rows" in result.stdout
    assert (run_dir / "audit.jsonl").read_bytes() == log_before


def test_a_missing_signing_key_stops_before_anything_is_stored(
    run_dir: Path, tmp_path: Path
) -> None:
    before = _rows(run_dir)
    path = tmp_path / "ratings.jsonl"
    path.write_text(_line(run_dir, 0) + "\n")
    result = _invoke(str(run_dir), str(path), "--key-file", str(tmp_path / "nokey"))
    assert isinstance(result.exception, AuditError)
    assert "signing key missing" in result.exception.one_line()
    assert _rows(run_dir) == before


def test_a_missing_file_or_run_dir_is_an_input_error(run_dir: Path, tmp_path: Path) -> None:
    result = _invoke(str(run_dir), str(tmp_path / "nope.jsonl"))
    assert isinstance(result.exception, InputError)
    assert "no such file" in result.exception.one_line()
    result = _invoke(str(tmp_path / "not-a-run"), str(tmp_path / "nope.jsonl"))
    assert isinstance(result.exception, InputError)
    assert "no such run directory" in result.exception.one_line()


def test_help_lists_the_import_command() -> None:
    result = CliRunner().invoke(feedback_cmd.app, ["--help"])
    assert result.exit_code == 0
    assert "import" in result.stdout
    result = CliRunner().invoke(feedback_cmd.app, ["import", "--help"])
    assert "--skip-invalid" in result.stdout and "--key-file" in result.stdout

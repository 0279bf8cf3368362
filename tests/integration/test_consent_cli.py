"""Issue acceptance through the real CLI: erasure leaves nothing readable, runs train only on
consented feedback, imports are all-or-nothing, retention purges are recorded."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from guarded_rl.audit.log import read_log
from guarded_rl.consent.replay_store import ReplayStore
from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
from guarded_rl.consent.store import PURPOSES
from guarded_rl.demo.users import Population
from guarded_rl.rundir.paths import RunPaths

ZELDA = "zelda.quartermaine@example.org"
COMMENT = "zelda thinks the third headline is unfair to her village"
GROUP = "group-zeta-of-nine"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from guarded_rl.policy import GuardPolicy
    from guarded_rl.runner import RunConfig, run

    run_dir = tmp_path_factory.mktemp("consent") / "run"
    run(RunConfig(run_dir=str(run_dir), cycles=4, users_per_cycle=12, seed=3), GuardPolicy())
    return run_dir


def _items(run_dir: Path) -> list[str]:
    with closing(sqlite3.connect(run_dir / "feedback.sqlite")) as db, db:
        return [i for (i,) in db.execute("SELECT item_id FROM items ORDER BY item_id")]


def _write_lines(path: Path, lines: list[object]) -> Path:
    path.write_text("".join(f"{json.dumps(x)}\n" for x in lines), encoding="utf-8")
    return path


def test_a_run_trains_on_no_feedback_of_people_without_training_consent(run_dir: Path) -> None:
    population = Population(200, seed=3)
    store = SQLiteFeedbackStore(
        run_dir / "feedback.sqlite", key_file=RunPaths(run_dir).recorded_store_key_file()
    )
    consenting = {store.pseudonym(u.user_id) for u in population.users if "training" in u.consents}
    refusing = {
        store.pseudonym(u.user_id) for u in population.users if "training" not in u.consents
    }
    store.close()
    replay = ReplayStore(
        run_dir / "feedback.sqlite", key_file=RunPaths(run_dir).recorded_store_key_file()
    )
    try:
        trained = [s.subject for cycle in range(4) for s in replay.load_batch(cycle).samples]
    finally:
        replay.close()
    assert trained and set(trained) <= consenting
    assert not set(trained) & refusing
    entries = read_log(run_dir / "audit.jsonl")
    refused = sum(
        e.payload["counts"]["refused_no_consent"] for e in entries if e.type == "update_proposed"
    )
    assert refused > 0  # the population did include readers without consent, and they were seen


def test_revoke_leaves_nothing_readable_in_the_run_directory(
    cli, run_dir: Path, tmp_path: Path
) -> None:
    assert cli(
        "consent", "grant", str(run_dir), "--user", ZELDA,
        "--purpose", "training", "--purpose", "fairness-analysis",
    ).returncode == 0  # fmt: skip
    items = _items(run_dir)
    lines = [
        {"id": f"zq-{i}", "user_id": ZELDA, "item_id": items[i], "reward": 1.0,
         "purposes": ["training", "fairness-analysis"], "comment": COMMENT, "group": GROUP}
        for i in range(3)
    ]  # fmt: skip
    imported = cli(
        "feedback", "import", str(run_dir), str(_write_lines(tmp_path / "z.jsonl", lines))
    )
    assert imported.returncode == 0, imported.stderr

    exported = cli("consent", "export", str(run_dir), "--user", ZELDA)
    assert exported.returncode == 0, exported.stderr
    document = json.loads(exported.stdout)
    assert document["user_id"] == ZELDA
    assert [r["comment"] for r in document["feedback"]] == [COMMENT] * 3
    assert {r["group"] for r in document["feedback"]} == {GROUP}

    with (
        closing(sqlite3.connect(run_dir / "feedback.sqlite")) as db,
        db,
    ):  # an attacker's copy, taken now
        sealed = db.execute(
            "SELECT f.nonce, f.personal, f.subject, f.feedback_id FROM feedback f "
            "WHERE f.feedback_id LIKE 'zq-%'"
        ).fetchall()
        sealed_id = db.execute("SELECT nonce, sealed_id, subject FROM subjects").fetchall()
    assert len(sealed) == 3

    revoked = cli("consent", "revoke", str(run_dir), "--user", ZELDA)
    assert revoked.returncode == 0, revoked.stderr
    assert "erased 3 feedback row(s)" in revoked.stdout

    # (every sqlite connection of this process is closed: reading the file with open() would
    # otherwise drop their POSIX locks)
    for path in run_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in (ZELDA, COMMENT, GROUP):
                assert secret.encode() not in data, (path.name, secret)

    with closing(sqlite3.connect(run_dir / "feedback.sqlite")) as db, db:
        keys = [bytes(k) for (k,) in db.execute("SELECT key FROM subject_keys")]
        keys += [bytes(v) for (v,) in db.execute("SELECT value FROM store_secrets")]
    candidates = [k for k in keys if len(k) in (16, 24, 32)]
    assert candidates  # other people's keys are still there: none of them opens zelda's data
    for nonce, personal, subject, feedback_id in sealed:
        aad = f"guarded-rl/feedback/{subject}/{feedback_id}".encode()
        for key in candidates:
            with pytest.raises(InvalidTag):
                AESGCM(key).decrypt(nonce, personal, aad)
    zelda_subject = sealed[0][2]
    (zelda_id,) = [row for row in sealed_id if row[2] == zelda_subject]
    for key in candidates:
        with pytest.raises(InvalidTag):
            AESGCM(key).decrypt(
                zelda_id[0], zelda_id[1], f"guarded-rl/subject/{zelda_subject}".encode()
            )

    assert cli("audit", "verify", str(run_dir)).returncode == 0
    shown = cli("consent", "show", str(run_dir), "--user", ZELDA, "--json")
    info = json.loads(shown.stdout)
    assert info["feedback_rows"] == 0
    assert all(not c["current"] for c in info["consents"])
    again = cli("consent", "revoke", str(run_dir), "--user", ZELDA)
    assert again.returncode == 2 and "already revoked" in again.stderr


def test_import_with_one_bad_line_changes_nothing_unless_skip_invalid(
    cli, run_dir: Path, tmp_path: Path
) -> None:
    assert (
        cli(
            "consent", "grant", str(run_dir), "--user", "ivo@example.org", "--purpose", "training"
        ).returncode
        == 0
    )
    items = _items(run_dir)
    good = [
        {"id": f"ivo-{i}", "user_id": "ivo@example.org", "item_id": items[i], "reward": 0.0,
         "purposes": ["training"]}
        for i in range(4)
    ]  # fmt: skip
    bad = {**good[0], "id": "ivo-bad", "reward": 7}
    path = _write_lines(tmp_path / "ivo.jsonl", [good[0], good[1], bad, good[2], good[3]])
    store = SQLiteFeedbackStore(
        run_dir / "feedback.sqlite", key_file=RunPaths(run_dir).recorded_store_key_file()
    )
    before = store.count()
    entries_before = len(read_log(run_dir / "audit.jsonl"))

    refused = cli("feedback", "import", str(run_dir), str(path))
    assert refused.returncode == 2
    assert f"{path}:3" in refused.stderr and "reward" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert store.count() == before
    assert len(read_log(run_dir / "audit.jsonl")) == entries_before

    skipped = cli("feedback", "import", str(run_dir), str(path), "--skip-invalid")
    assert skipped.returncode == 0, skipped.stderr
    assert "line 3" in skipped.stderr
    assert store.count() == before + 4, (skipped.stdout, skipped.stderr)
    store.close()
    last = read_log(run_dir / "audit.jsonl")[-1]
    assert last.type == "feedback_imported"
    assert last.payload["stored"] == 4 and last.payload["refused_lines"] == [3]


def test_retention_purge_is_recorded_by_the_cli_and_at_run_start(cli, run_dir: Path) -> None:
    old = time.time() - 400 * 86400
    with closing(sqlite3.connect(run_dir / "feedback.sqlite")) as db, db:
        db.execute("UPDATE feedback SET recorded_at = ? WHERE cycle = 0", (old,))
        aged = db.execute("SELECT COUNT(*) FROM feedback WHERE cycle = 0").fetchone()[0]
    assert aged > 0
    purged = cli("consent", "purge", str(run_dir))
    assert purged.returncode == 0, purged.stderr
    assert f"purged {aged} feedback row(s) older than 365 day(s)" in purged.stdout
    entry = read_log(run_dir / "audit.jsonl")[-1]
    assert entry.type == "retention_purge" and entry.payload["feedback_rows"] == aged

    with closing(sqlite3.connect(run_dir / "feedback.sqlite")) as db, db:
        db.execute("UPDATE feedback SET recorded_at = ? WHERE cycle = 1", (old,))
        aged = db.execute("SELECT COUNT(*) FROM feedback WHERE cycle = 1").fetchone()[0]
    resumed = cli("run", "--resume", str(run_dir), "--cycles", "1")
    assert resumed.returncode == 0, resumed.stderr
    purges = [e for e in read_log(run_dir / "audit.jsonl") if e.type == "retention_purge"]
    assert purges[-1].payload["feedback_rows"] == aged
    assert cli("audit", "verify", str(run_dir)).returncode == 0


def test_commands_that_write_the_log_wait_for_no_live_run(cli, run_dir: Path) -> None:
    import subprocess
    import sys

    holder = subprocess.Popen(
        [
            sys.executable, "-c",
            "import sys\nfrom guarded_rl.rundir.lock import run_lock\n"
            "with run_lock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.readline()",
            str(run_dir),
        ],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = len(read_log(run_dir / "audit.jsonl"))
        for args in (
            ("consent", "grant", str(run_dir), "--user", "late@x.org", "--purpose", "training"),
            ("consent", "purge", str(run_dir)),
            ("run", "--resume", str(run_dir), "--cycles", "1"),
        ):
            result = cli(*args)
            assert result.returncode == 2, (args, result.stderr)
            assert "in use by another guarded-rl process" in result.stderr
        assert len(read_log(run_dir / "audit.jsonl")) == before
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=30)


def test_consent_list_names_people_by_pseudonym_with_counts(cli, run_dir: Path) -> None:
    population = Population(200, seed=3)
    store = SQLiteFeedbackStore(
        run_dir / "feedback.sqlite", key_file=RunPaths(run_dir).recorded_store_key_file()
    )
    expected = {store.pseudonym(u.user_id): set(u.consents) for u in population.users}
    # people other tests on this module's run grant consent to (any test order)
    for other in (ZELDA, "ivo@example.org", "late@x.org"):
        expected[store.pseudonym(other)] = set(PURPOSES)
    store.close()
    listed = cli("consent", "list", str(run_dir), "--json")
    assert listed.returncode == 0, listed.stderr
    people = json.loads(listed.stdout)["people"]
    assert people and [p["pseudonym"] for p in people] == sorted(p["pseudonym"] for p in people)
    for person in people:
        purposes = set(person["current"]) | set(person["revoked"])
        assert purposes <= expected[person["pseudonym"]]
    with_rows = [p for p in people if p["feedback_rows"]]
    assert (
        sum(p["feedback_rows"] for p in with_rows)
        == SQLiteFeedbackStore(
            run_dir / "feedback.sqlite", key_file=RunPaths(run_dir).recorded_store_key_file()
        ).count()
    )
    text = cli("consent", "list", str(run_dir))
    assert text.returncode == 0 and "people on record" in text.stdout
    assert "reader-" not in listed.stdout + text.stdout  # no external ids, only pseudonyms


def test_feedback_items_lists_the_ids_an_import_may_rate(cli, run_dir: Path) -> None:
    listed = cli("feedback", "items", str(run_dir), "--json")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["items"]
    assert sorted(i["item_id"] for i in items) == _items(run_dir)
    one = cli("feedback", "items", str(run_dir), "--cycle", "1", "--json")
    cycle_one = json.loads(one.stdout)["items"]
    assert cycle_one and {i["cycle"] for i in cycle_one} == {1}
    assert len(cycle_one) < len(items)
    text = cli("feedback", "items", str(run_dir), "--cycle", "2")
    assert text.returncode == 0 and "item(s)" in text.stdout

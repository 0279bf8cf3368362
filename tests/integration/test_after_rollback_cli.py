"""After `rollback`, what the run directory tells a person is about the weights that are live:
`summary.json` names them, and `consent revoke` lists as live only updates still in them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guarded_rl.audit.log import read_log


@pytest.fixture(scope="module")
def rolled_back(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four applied updates (cycles 0..3), then a rollback to update 1."""
    import os
    import subprocess
    import sys

    script = str(Path(sys.executable).parent / "guarded-rl")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run_dir = tmp_path_factory.mktemp("rb") / "run"
    for args in (
        ["run", "--cycles", "4", "--users", "12", "--run-dir", str(run_dir)],
        ["rollback", str(run_dir), "--to", "u1", "--reason", "drift after update 1"],
    ):
        done = subprocess.run([script, *args], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr
    return run_dir


def _applied(run_dir: Path) -> dict[int, str]:
    return {
        e.payload["cycle"]: e.payload["model_sha256"]
        for e in read_log(run_dir / "audit.jsonl")
        if e.type == "update_applied"
    }


def test_summary_names_the_live_weights_after_a_rollback(rolled_back: Path) -> None:
    applied = _applied(rolled_back)
    assert sorted(applied) == [0, 1, 2, 3]
    summary = json.loads((rolled_back / "summary.json").read_text())
    assert summary["live_sha256"] == applied[1] != applied[3]
    assert summary["live"]["updates"] == [0, 1]
    assert summary["live"]["changed_by"]["type"] == "rollback"
    assert summary["live"]["changed_by"]["to_update"] == 1
    assert "as it ended" in summary["describes"]


def _a_person_trained_before_and_after(run_dir: Path) -> str:
    """A reader whose feedback trained update 1 (live) and a later, rolled-back one."""
    from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
    from guarded_rl.rundir.paths import RunPaths

    store = SQLiteFeedbackStore(
        run_dir / "feedback.sqlite", key_file=RunPaths(run_dir).recorded_store_key_file()
    )
    try:
        for index in range(200):
            user = f"reader-0-{index:05d}"
            cycles = set(store.trained_cycles(store.pseudonym(user)))
            if 1 in cycles and cycles & {2, 3}:
                return user
    finally:
        store.close()
    raise AssertionError("no reader trained both update 1 and a later one")


def test_revoke_after_rollback_names_rolled_back_updates_apart(cli, rolled_back: Path) -> None:
    user = _a_person_trained_before_and_after(rolled_back)
    result = cli("consent", "revoke", str(rolled_back), "--user", user)
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "update(s) in the live weights were trained on this person's feedback (cycle 1)" in out
    assert "--to 0 " in out  # the last live update before the first affected one
    erasure = next(e for e in read_log(rolled_back / "audit.jsonl") if e.type == "erasure")
    assert [u["cycle"] for u in erasure.payload["live_updates"]] == [1]
    undone = [u["cycle"] for u in erasure.payload["rolled_back_updates"]]
    assert undone and set(undone) <= {2, 3}
    listed = ("cycle " if len(undone) == 1 else "cycles ") + ", ".join(map(str, undone))
    assert f"were rolled back and are not in the live weights ({listed})" in out

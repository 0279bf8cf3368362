"""`guarded-rl run` end to end through the real CLI, on the embedded default model."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from guarded_rl.audit.log import read_log
from guarded_rl.weights import state_sha256


def test_short_run_writes_a_complete_run_directory(cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = cli("run", "--cycles", "3", "--users", "6", "--seed", "1", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert "like-rate" in result.stdout and "updates applied" in result.stdout
    assert result.stdout.count("cycle ") >= 3  # a line per cycle

    for name in ("run.toml", "audit.jsonl", "summary.json", "feedback.sqlite", "checkpoints"):
        assert (run_dir / name).exists(), name

    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("like_rate_by_cycle", "generated_by_cycle", "blocked_by_cycle"):
        assert len(summary[key]) == 3, key
    assert summary["generated_by_cycle"] == [6 * 4] * 3  # users x K samples
    assert set(summary["updates"]) >= {"applied", "pending", "rejected"}
    updates = summary["updates"]
    assert (
        updates["applied"] + updates["pending"] + updates["rejected"] + updates["none_proposed"]
        == 3
    )

    run_toml = tomllib.loads((run_dir / "run.toml").read_text())
    assert run_toml["run"]["seed"] == 1 and run_toml["run"]["cycles"] == 3
    assert run_toml["policy"]["safety"]["filters"] == ["profanity", "threat", "pii"]

    entries = read_log(run_dir / "audit.jsonl")  # raises if the chain is broken
    types = [e.type for e in entries]
    assert types[0] == "run_started" and types[-1] == "run_finished"
    assert types.count("update_proposed") + types.count("cycle_skipped") == 3
    assert entries[-1].hash == summary["audit_head"]
    assert summary["signed_tree_size"] == len(entries)
    assert (run_dir / "audit.head").is_file() and (run_dir / "audit.pub").is_file()
    from guarded_rl.rundir.paths import RunPaths, user_key_dir

    key = RunPaths(run_dir).recorded_key_file()  # in the user's key directory, far from the run
    assert key.parent == user_key_dir() and key.name.startswith("run-")
    assert key.is_file() and key.stat().st_mode & 0o777 == 0o600
    assert user_key_dir().stat().st_mode & 0o777 == 0o700
    assert not (run_dir.parent / "run.key").exists()
    assert str(key) in result.stdout  # printed at the start of the run

    # the final weights are checkpointed (weights and optimizer) and verify
    from guarded_rl.audit.checkpoints import CheckpointStore

    store = CheckpointStore(run_dir / "checkpoints")
    saved = [e.payload for e in entries if e.type == "checkpoint_saved"]
    assert saved[0]["reason"] == "start" and saved[-1]["reason"] == "final"
    assert saved[-1]["model_sha256"] == summary["live_sha256"]
    state, optimizer = store.load(saved[-1]["checkpoint_id"])
    assert state_sha256(state) == summary["live_sha256"] and optimizer is not None


def test_audit_log_holds_no_text_or_identities(cli, tmp_path: Path) -> None:
    import sqlite3

    run_dir = tmp_path / "run"
    result = cli("run", "--cycles", "2", "--users", "5", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    audit = (run_dir / "audit.jsonl").read_text()
    db = sqlite3.connect(run_dir / "feedback.sqlite")
    subjects = {row[0] for row in db.execute("SELECT subject FROM consent")}
    db.close()
    assert subjects, "the consent ledger should list the consenting readers"
    # people appear by pseudonym only (their grants are entries); their ids never do
    assert all(s.startswith("p-") for s in subjects)
    assert "reader-" not in audit
    for topic in ("politics:", "sports:", "science:", "@example"):
        # probe texts of the policy are echoed in run_start; generated text never is
        assert audit.count(topic) <= 1


def test_same_seed_gives_the_same_run(cli, tmp_path: Path) -> None:
    outs = []
    for name in ("a", "b"):
        result = cli(
            "run", "--cycles", "2", "--users", "4", "--seed", "7", "--run-dir", str(tmp_path / name)
        )
        assert result.returncode == 0, result.stderr
        outs.append(json.loads((tmp_path / name / "summary.json").read_text()))
    assert outs[0]["live_sha256"] == outs[1]["live_sha256"]
    assert outs[0]["like_rate_by_cycle"] == outs[1]["like_rate_by_cycle"]


def test_interactive_mode_takes_ratings_from_the_terminal(cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    answers = "y\n" + "y\nn\ny\nn\n" * 10  # consent, then ratings for every shown item
    result = cli("run", "--interactive", "--cycles", "2", "--run-dir", str(run_dir), input=answers)
    assert result.returncode == 0, result.stderr
    assert "like it?" in result.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["rated_by_cycle"] == summary["shown_by_cycle"]
    assert sum(summary["rated_by_cycle"]) > 0


def test_interactive_quit_stops_cleanly_with_a_verifiable_log(cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = cli("run", "--interactive", "--cycles", "5", "--run-dir", str(run_dir), input="y\nq\n")
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped_early"] is True
    assert read_log(run_dir / "audit.jsonl")[-1].type == "run_finished"


def test_ctrl_c_stops_the_run_as_stopped_and_says_how_to_resume(cli, tmp_path: Path) -> None:
    """Ctrl-C is the user stopping the run: `stopped` (as documented), exit 130, a signed log,
    the `run --resume DIR` hint, and the resume continues the same log."""
    import os
    import signal
    import subprocess
    import sys
    import time

    run_dir = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "COLUMNS": "200"}
    script = str(Path(sys.executable).parent / "guarded-rl")
    proc = subprocess.Popen(
        [script, "run", "--cycles", "200", "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # a pytest-xdist worker ignores SIGINT, and children inherit that: a shell does not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    log = run_dir / "audit.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if log.exists() and '"type":"update_proposed"' in log.read_text(encoding="utf-8"):
            break
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert f"guarded-rl run --resume {run_dir}" in err
    assert "Traceback" not in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["outcome"] == "stopped"
    finished = read_log(log)[-1]
    assert finished.type == "run_finished"
    assert finished.payload["outcome"] == "stopped"
    assert cli("audit", "verify", str(run_dir)).returncode == 0
    resumed = cli("run", "--resume", str(run_dir), "--cycles", "1")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "summary.json").read_text())["outcome"] == "completed"


def test_probing_shows_progress_instead_of_sitting_silent(cli, tmp_path: Path) -> None:
    """The output probes of an update take many seconds: the run says it is probing."""
    policy = tmp_path / "probe.toml"
    policy.write_text("[fairness]\nprobe_every = 1\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    result = cli("run", "--cycles", "1", "--policy", str(policy), "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert "probing the live model (" in result.stdout
    assert "probing the candidate (" in result.stdout

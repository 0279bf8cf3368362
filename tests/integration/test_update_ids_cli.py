"""Every command that names an update takes `review`'s id (`u1`) and the bare cycle (`1`)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def reviewed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two cycles whose updates all wait for review (no output probes: fast)."""
    import os
    import subprocess
    import sys

    from guarded_rl.approval.reviewers import create_reviewer_key

    base = tmp_path_factory.mktemp("ids")
    create_reviewer_key("alice", "reviewer", base / "alice.key", base / "reviewers.toml")
    create_reviewer_key("olivia", "operator", base / "olivia.key", base / "reviewers.toml")
    policy = base / "review.toml"
    policy.write_text(
        '[fairness]\nprobe_every = 0\n[gate]\nhuman_review = "always"\n'
        f'reviewers = "{base / "reviewers.toml"}"\n'
    )
    run_dir = base / "run"
    made = subprocess.run(
        [str(Path(sys.executable).parent / "guarded-rl"), "run", "--policy", str(policy),
         "--cycles", "2", "--users", "6", "--run-dir", str(run_dir),
         "--operator-key", str(base / "olivia.key")],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return run_dir


def test_audit_explain_takes_the_review_id_and_the_cycle(cli, reviewed_run: Path) -> None:
    by_id = cli("audit", "explain", str(reviewed_run), "u1")
    by_cycle = cli("audit", "explain", str(reviewed_run), "1")
    assert by_id.returncode == 0, by_id.stderr
    assert by_id.stdout == by_cycle.stdout and "Update of cycle 1" in by_id.stdout


def test_review_show_takes_the_cycle_and_the_review_id(cli, reviewed_run: Path) -> None:
    by_cycle = cli("review", "show", str(reviewed_run), "1", "--samples", "0")
    by_id = cli("review", "show", str(reviewed_run), "u1", "--samples", "0")
    assert by_cycle.returncode == 0, by_cycle.stderr
    assert by_cycle.stdout == by_id.stdout and by_cycle.stdout.startswith("u1 (cycle 1)")


def test_a_malformed_id_is_one_line_naming_it(cli, reviewed_run: Path) -> None:
    for args in (("audit", "explain", str(reviewed_run), "update3"),
                 ("review", "show", str(reviewed_run), "update3"),
                 ("replay", str(reviewed_run), "--update", "update3")):  # fmt: skip
        result = cli(*args)
        assert result.returncode == 2, result.stderr
        line = result.stderr.strip()
        assert "\n" not in line and "Traceback" not in line and "valid integer" not in line
        assert "'update3'" in line and "u3 or 3" in line


def test_an_offline_approval_by_cycle_applies_and_summary_names_it_live(
    cli, reviewed_run: Path
) -> None:
    """Last in this module: it changes the run (approves update 1 with no live run)."""
    import json

    key = reviewed_run.parent / "alice.key"
    approved = cli("review", "approve", str(reviewed_run), "1", "--reviewer", "alice",
                   "--key", str(key))  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    assert "u1: applied" in approved.stdout
    candidate = json.loads(cli("review", "list", str(reviewed_run), "--all", "--json").stdout)
    u1 = next(p for p in candidate["proposals"] if p["id"] == "u1")
    summary = json.loads((reviewed_run / "summary.json").read_text())
    assert summary["live_sha256"] == u1["candidate_sha256"]
    assert summary["live"]["changed_by"] == {
        "type": "update_applied", "seq": summary["live"]["changed_by"]["seq"], "cycle": 1
    }  # fmt: skip
    assert summary["live"]["updates"] == [1]

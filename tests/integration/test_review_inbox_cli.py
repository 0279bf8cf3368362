"""Whatever lands in `review/inbox/` neither crashes nor hangs the loop or `review list`
(issue 15, item 19): anything but a small regular decision file is refused and moved aside."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

HOSTILE = ("dangling.json", "folder.json", "fifo.json", "huge.json")


@pytest.fixture
def hostile_run(tmp_path: Path) -> Path:
    from guarded_rl.policy import parse_policy
    from guarded_rl.runner import RunConfig, run

    run_dir = tmp_path / "run"
    policy = parse_policy({"fairness": {"probe_every": 0}})
    run(RunConfig(run_dir=str(run_dir), cycles=1, users_per_cycle=8, seed=2), policy,
        key_file=tmp_path / "run.key")  # fmt: skip
    inbox = run_dir / "review" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    (inbox / "folder.json").mkdir()
    os.mkfifo(inbox / "fifo.json")
    (inbox / "huge.json").write_bytes(b'{"body": "' + b"A" * (10 * 1024 * 1024) + b'"}')
    return run_dir


def test_hostile_inbox_entries_are_quarantined_without_hang(cli, hostile_run: Path) -> None:
    listed = cli("review", "list", str(hostile_run), "--json", timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["queued_decisions"] == 0

    resumed = cli("run", "--resume", str(hostile_run), "--cycles", "1", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert len(resumed.stdout) < 20_000  # the 10 MB file is not echoed

    inbox, refused = hostile_run / "review" / "inbox", hostile_run / "review" / "refused"
    assert not list(inbox.iterdir())
    reasons = {
        name: (refused / name).with_suffix(".reason").read_text().strip() for name in HOSTILE
    }
    assert "symbolic link" in reasons["dangling.json"]
    assert "a directory" in reasons["folder.json"]
    assert "a FIFO" in reasons["fifo.json"]
    assert "too large" in reasons["huge.json"]
    assert all(len(r) <= 200 for r in reasons.values())

    size = (hostile_run / "audit.jsonl").stat().st_size
    again = cli("review", "list", str(hostile_run), "--json", timeout=60)
    assert again.returncode == 0, again.stderr
    files = {r["file"] for r in json.loads(again.stdout)["refused_decisions"]}
    assert files == set(HOSTILE)
    assert (hostile_run / "audit.jsonl").stat().st_size == size


def test_review_submit_of_a_huge_or_special_file_is_one_short_line(cli, hostile_run: Path) -> None:
    inbox = hostile_run / "review" / "inbox"
    for name in HOSTILE:
        result = cli("review", "submit", str(hostile_run), str(inbox / name), timeout=60)
        assert result.returncode == 2, (name, result.stderr)
        line = result.stderr.strip()
        assert "\n" not in line and "Traceback" not in line and len(line) < 500, line

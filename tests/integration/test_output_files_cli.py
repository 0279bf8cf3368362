"""Every command writing a file the user names keeps existing data, stays out of run
directories and creates no folders (issue 15, item 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guarded_rl.audit.log import read_log


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, str]:
    """A run with one update waiting for review, alice's key, the pending id and a reader."""
    from guarded_rl.approval.reviewers import create_reviewer_key
    from guarded_rl.policy import parse_policy
    from guarded_rl.runner import RunConfig, run

    home = tmp_path_factory.mktemp("outputs")
    create_reviewer_key("alice", "reviewer", home / "alice.key", home / "reviewers.toml")
    create_reviewer_key("olivia", "operator", home / "olivia.key", home / "reviewers.toml")
    policy = parse_policy(
        {
            "fairness": {"probe_every": 0},
            "gate": {"human_review": "always", "reviewers": str(home / "reviewers.toml")},
        }
    )
    run_dir = home / "run"
    config = RunConfig(run_dir=str(run_dir), cycles=1, users_per_cycle=12, seed=5)
    run(config, policy, key_file=home / "run.key", operator_key=home / "olivia.key")
    entries = read_log(run_dir / "audit.jsonl")
    proposed = next(e for e in entries if e.type == "update_proposed")
    pid = f"u{proposed.payload['cycle']}"
    reader = next(r for r in _readers() if _has_data(run_dir, r))
    return run_dir, home / "alice.key", pid, reader


def _readers() -> list[str]:
    return [f"reader-5-{i:05d}" for i in range(200)]


def _has_data(run_dir: Path, reader: str) -> bool:
    from guarded_rl.commands.consent import export
    from guarded_rl.errors import GuardedRLError

    try:
        export(run_dir, reader)
    except GuardedRLError:
        return False
    return True


def _commands(held: tuple[Path, Path, str, str], target: Path) -> dict[str, list[str]]:
    run_dir, key, pid, reader = held
    return {
        "consent export": ["consent", "export", str(run_dir), "--user", reader, "-o", str(target)],
        "review approve": ["review", "approve", str(run_dir), pid, "--reviewer", "alice",
                           "--key", str(key), "--out", str(target)],
        "report": ["report", str(run_dir), "--format", "json", "--out", str(target)],
    }  # fmt: skip


NAMES = ["consent export", "review approve", "report"]


@pytest.mark.parametrize("name", NAMES)
def test_existing_file_refused_unless_force(cli, held, tmp_path: Path, name: str) -> None:
    target = tmp_path / "existing.json"
    target.write_bytes(b"precious")
    refused = cli(*_commands(held, target)[name])
    assert refused.returncode == 2, refused.stderr
    assert "file exists" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert target.read_bytes() == b"precious"
    forced = cli(*_commands(held, target)[name], "--force")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(target.read_text())  # replaced by the command's document


@pytest.mark.parametrize("name", NAMES)
def test_run_directory_files_refused_even_with_force(cli, held, tmp_path: Path, name: str) -> None:
    run_dir = held[0]
    link = tmp_path / "link.json"
    link.symlink_to(run_dir / "audit.jsonl")
    before = {p: p.read_bytes() for p in (run_dir / "audit.jsonl", held[1])}
    for target in (run_dir / "audit.jsonl", link, held[1].parent / "run" / "new.json"):
        refused = cli(*_commands(held, target)[name], "--force")
        assert refused.returncode == 2, (target, refused.stderr)
        assert "run directory" in refused.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert not (run_dir / "new.json").exists()


@pytest.mark.parametrize("name", NAMES)
def test_missing_folder_refused_not_created(cli, held, tmp_path: Path, name: str) -> None:
    target = tmp_path / "nonexistent" / "dir" / "x.json"
    refused = cli(*_commands(held, target)[name])
    assert refused.returncode == 2, refused.stderr
    assert f"no such folder: {target.parent}" in refused.stderr
    assert not (tmp_path / "nonexistent").exists()


def test_keygen_keeps_keys_and_runs_and_creates_no_folders(cli, held, tmp_path: Path) -> None:
    run_dir, alice_key, _, _ = held
    before = alice_key.read_bytes()
    over = cli("review", "keygen", "--name", "eve", "--key-file", str(alice_key))
    assert over.returncode == 2 and alice_key.read_bytes() == before
    into = cli("review", "keygen", "--name", "eve", "--key-file", str(run_dir / "eve.key"))
    assert into.returncode == 2 and "run directory" in into.stderr
    assert not (run_dir / "eve.key").exists()
    missing = cli("review", "keygen", "--name", "eve", "--key-file", str(tmp_path / "a" / "k"))
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    assert not (tmp_path / "a").exists()
    registry = cli("review", "keygen", "--name", "eve", "--key-file", str(tmp_path / "eve.key"),
                   "--reviewers", str(run_dir / "audit.jsonl"))  # fmt: skip
    assert registry.returncode == 2 and "run directory" in registry.stderr
    assert not (tmp_path / "eve.key").exists()

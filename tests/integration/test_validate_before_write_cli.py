"""A policy that cannot run fails `policy check`, and `run` before writing (issue 15, item 22)."""

from __future__ import annotations

from pathlib import Path


def test_missing_probe_suite_fails_check_and_run_writes_nothing(cli, tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text(f'[fairness]\nprobe_suite = "{tmp_path / "nope.toml"}"\n')
    checked = cli("policy", "check", str(policy))
    assert checked.returncode == 2 and "no such probe suite file" in checked.stderr
    run_dir, key = tmp_path / "run", tmp_path / "run.key"
    ran = cli("run", "--policy", str(policy), "--cycles", "1", "--run-dir", str(run_dir),
              "--key-file", str(key))  # fmt: skip
    assert ran.returncode == 2 and "no such probe suite file" in ran.stderr
    assert "Traceback" not in ran.stderr
    assert not run_dir.exists() and not key.exists()


def test_screen_of_a_directory_is_one_line(cli, tmp_path: Path) -> None:
    result = cli("screen", str(tmp_path))
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert line == f"error: {tmp_path}: is a directory (expected a text or JSONL file)"

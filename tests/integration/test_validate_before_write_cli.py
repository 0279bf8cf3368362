"""A policy that cannot run fails `policy check`, and `run` before writing (issue 15, item 22)."""

from __future__ import annotations

from pathlib import Path


def test_missing_probe_suite_fails_check_and_run_writes_nothing(cli, tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text(f'[fairness]\nprobe_suite = "{tmp_path / "nope.toml"}"\n')
    checked = cli("policy", "check", str(policy))
    assert checked.returncode == 2
    assert checked.stderr.strip() == (
        f"error: {policy}: fairness.probe_suite = '{tmp_path / 'nope.toml'}': no such probe "
        "suite file (expected a probe suite TOML file (unset: the shipped suite))"
    )
    run_dir, key = tmp_path / "run", tmp_path / "run.key"
    ran = cli("run", "--policy", str(policy), "--cycles", "1", "--run-dir", str(run_dir),
              "--key-file", str(key))  # fmt: skip
    assert ran.returncode == 2 and ran.stderr.strip() == checked.stderr.strip()
    assert "Traceback" not in ran.stderr
    assert not run_dir.exists() and not key.exists()


def test_screen_of_a_directory_is_one_line(cli, tmp_path: Path) -> None:
    result = cli("screen", str(tmp_path))
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert line == f"error: {tmp_path}: is a directory (expected a text or JSONL file)"


def test_os_error_while_writing_is_one_line(cli, tmp_path: Path) -> None:
    """An OSError (read-only folder, a directory where a file goes) is one line, exit 1."""
    from guarded_rl.policy import parse_policy
    from guarded_rl.runner import RunConfig, run

    run_dir = tmp_path / "run"
    run(RunConfig(run_dir=str(run_dir), cycles=1, users_per_cycle=8, seed=1),
        parse_policy({"fairness": {"probe_every": 0}}), key_file=tmp_path / "k.key")  # fmt: skip
    (run_dir / "report-eu-ai-act.json").mkdir()  # the report's own file cannot be written
    result = cli("report", str(run_dir), "--format", "json")
    assert result.returncode == 1, result.stderr
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line and "Traceback" not in line, line


def test_prompt_longer_than_the_context_is_refused_before_writing(cli, tmp_path: Path) -> None:
    run_dir, key = tmp_path / "run", tmp_path / "run.key"
    ran = cli("run", "--cycles", "1", "--run-dir", str(run_dir), "--key-file", str(key),
              "--prompt", "word " * 3000)  # fmt: skip
    assert ran.returncode == 2, ran.stderr
    line = ran.stderr.strip()
    assert "--prompt" in line and "too long for the model" in line and "Traceback" not in line
    assert len(line) < 600
    assert not run_dir.exists() and not key.exists()

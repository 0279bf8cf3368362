"""Bad input: one line naming what is wrong, a non-zero exit, nothing written."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_policy_check_accepts_the_shipped_policies(cli) -> None:
    for policy in sorted((REPO / "guarded_rl" / "policies").glob("*.toml")):
        result = cli("policy", "check", str(policy))
        assert result.returncode == 0, result.stderr
        assert "ok" in result.stdout


def test_policy_check_typo_exits_2_with_one_line(cli, tmp_path: Path) -> None:
    bad = tmp_path / "typo.toml"
    bad.write_text("[safety]\nprofanity_treshold = 0.4\n")
    result = cli("policy", "check", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert str(bad) in line and "safety.profanity_treshold" in line
    assert "profanity_threshold" in line  # says what is allowed
    assert "Traceback" not in result.stderr


def test_policy_check_bad_value_names_key_and_value(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[gate]\nmax_step_kl = -3\n")
    result = cli("policy", "check", str(bad))
    assert result.returncode == 2
    assert "gate.max_step_kl" in result.stderr and "-3" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_empty_filter_list_is_refused(cli, tmp_path: Path) -> None:
    bad = tmp_path / "nofilters.toml"
    bad.write_text("[safety]\nfilters = []\n")
    result = cli("policy", "check", str(bad))
    assert result.returncode == 2
    assert "safety.filters" in result.stderr


def test_debug_shows_the_traceback(cli, tmp_path: Path) -> None:
    bad = tmp_path / "typo.toml"
    bad.write_text("[safety]\nprofanity_treshold = 0.4\n")
    result = cli("--debug", "policy", "check", str(bad))
    assert result.returncode == 2
    assert "Traceback" in result.stderr


def test_run_with_bad_policy_writes_nothing(cli, tmp_path: Path) -> None:
    bad = tmp_path / "typo.toml"
    bad.write_text("[learner]\nlearning_rat = 0.1\n")
    run_dir = tmp_path / "run"
    result = cli("run", "--policy", str(bad), "--cycles", "1", "--run-dir", str(run_dir))
    assert result.returncode == 2
    assert not run_dir.exists()


def test_run_with_missing_model_writes_nothing(cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    missing = tmp_path / "no-such-model"
    missing.mkdir()
    result = cli("run", "--model", str(missing), "--cycles", "1", "--run-dir", str(run_dir))
    assert result.returncode == 1
    assert "--model" in result.stderr and str(missing) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not run_dir.exists()


def test_run_refuses_a_used_run_directory(cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "audit.jsonl").write_text("precious\n")
    result = cli("run", "--cycles", "1", "--run-dir", str(run_dir))
    assert result.returncode == 2
    assert "--run-dir" in result.stderr
    assert (run_dir / "audit.jsonl").read_text() == "precious\n"


def test_run_rejects_out_of_range_flags(cli, tmp_path: Path) -> None:
    result = cli("run", "--cycles", "0", "--run-dir", str(tmp_path / "r"))
    assert result.returncode == 2
    assert "--cycles" in result.stderr
    assert not (tmp_path / "r").exists()


def test_run_with_uncached_hub_id_fails_offline_in_one_line(cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = cli(
        "run", "--model", "no-such-org/no-such-model", "--cycles", "1", "--run-dir", str(run_dir)
    )
    assert result.returncode == 1
    assert "no-such-org/no-such-model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not run_dir.exists()


def test_usage_errors_print_usage_not_a_traceback(cli) -> None:
    for args in (("run", "--nope"), ("run", "--cycles", "x"), ("consent",), ("feedback",)):
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr, args

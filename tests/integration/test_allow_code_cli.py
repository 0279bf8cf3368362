"""A policy's custom scorers load only code the user allowed (issue 15, item 21)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def scorer_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "zap_scorer.py").write_text(
        "def score(text):\n    return 1.0 if 'zap' in text else 0.0\n"
    )
    (tmp_path / "zap.toml").write_text(
        '[safety]\nfilters = ["profanity", "zap"]\n'
        '[safety.custom.zap]\ncallable = "zap_scorer:score"\n'
    )
    (tmp_path / "shell.toml").write_text(
        '[safety]\nfilters = ["x"]\n[safety.custom.x]\ncallable = "os:system"\n'
    )
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(tmp_path)) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.delenv("GUARDED_RL_ALLOW_CODE", raising=False)
    return tmp_path


def test_os_system_refused_even_when_allowed(cli, scorer_dir: Path) -> None:
    marker = scorer_dir / "ran"
    for args in (
        ["policy", "check", str(scorer_dir / "shell.toml"), "--allow-code", "os"],
        ["screen", "--policy", str(scorer_dir / "shell.toml"), "--allow-code", "os"],
    ):
        result = cli(*args, input=f"touch {marker}\n")
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert "safety.custom.x.callable = 'os:system'" in result.stderr
        assert "never loaded" in result.stderr
    assert not marker.exists()


def test_not_allowed_module_refused_and_check_lists_code(cli, scorer_dir: Path) -> None:
    policy = str(scorer_dir / "zap.toml")
    refused = cli("policy", "check", policy)
    assert refused.returncode == 2
    assert policy in refused.stderr and "--allow-code zap_scorer" in refused.stderr
    checked = cli("policy", "check", policy, "--allow-code", "zap_scorer")
    assert checked.returncode == 0, checked.stderr
    assert "loads code: zap_scorer:score (safety.custom.zap.callable)" in checked.stdout
    assert "loads code: none" in cli("policy", "check", "policies/default.toml").stdout
    screened = cli("screen", "--policy", policy, "--allow-code", "zap_scorer", input="zap it\n")
    assert screened.returncode == 0, screened.stderr
    assert '"action": "block"' in screened.stdout
    assert cli("screen", "--policy", policy, input="zap it\n").returncode == 2


def test_run_and_resume_need_allowance(cli, scorer_dir: Path) -> None:
    policy, run_dir = str(scorer_dir / "zap.toml"), scorer_dir / "run"
    key = scorer_dir / "run.key"
    refused = cli("run", "--policy", policy, "--cycles", "1", "--run-dir", str(run_dir),
                  "--key-file", str(key))  # fmt: skip
    assert refused.returncode == 2 and "--allow-code zap_scorer" in refused.stderr
    assert not run_dir.exists() and not key.exists()  # refused before anything was written
    made = cli("run", "--policy", policy, "--cycles", "1", "--run-dir", str(run_dir),
               "--key-file", str(key), "--allow-code", "zap_scorer")  # fmt: skip
    assert made.returncode == 0, made.stderr
    size = (run_dir / "audit.jsonl").stat().st_size
    resumed = cli("run", "--resume", str(run_dir), "--cycles", "1")
    assert resumed.returncode == 2, resumed.stderr
    assert "run_started: safety.custom.zap.callable" in resumed.stderr
    assert (run_dir / "audit.jsonl").stat().st_size == size

"""Integration tests drive the real `guarded-rl` console script in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "guarded-rl"
    if script.exists():
        return [str(script)]
    found = shutil.which("guarded-rl")
    if found:
        return [found]
    return [sys.executable, "-m", "guarded_rl"]


@pytest.fixture
def cli():
    """Run `guarded-rl ARGS...`; returns the CompletedProcess (text mode)."""

    def run(*args: str, input: str | None = None, cwd: Path | None = None, timeout: int = 600):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120", "NO_COLOR": "1"}
        return subprocess.run(
            [*_cli(), *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's main job, `guarded-rl run --cycles 40 --seed 0`, run once for the whole
    session (with pytest-xdist: once for all workers, under a lock). Read-only: copy it to
    change it."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # this session's folder, the same for every xdist worker
    run_dir = shared / "default-run"
    with FileLock(str(shared / "default-run.lock")):
        done = shared / "default-run.done"
        if not done.exists():
            shutil.rmtree(run_dir, ignore_errors=True)
            env = {**os.environ, "HF_HUB_OFFLINE": "1"}
            made = subprocess.run(
                [*_cli(), "run", "--cycles", "40", "--seed", "0", "--run-dir", str(run_dir)],
                capture_output=True,
                text=True,
                env=env,
                timeout=1200,
            )
            if made.returncode != 0:
                pytest.fail(f"the default run failed: {made.stderr[-2000:]}")
            done.write_text(made.stdout, encoding="utf-8")
    return run_dir

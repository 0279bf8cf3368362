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

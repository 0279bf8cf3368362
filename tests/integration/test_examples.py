"""Every example runs (tiny budgets) and prints what it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_linear_generator_learns() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "linear_generator.py"), "--steps", "120"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r"like-rate before ([\d.]+) after ([\d.]+)", result.stdout)
    assert match, result.stdout
    before, after = map(float, match.groups())
    assert after > before + 0.15

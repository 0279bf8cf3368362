"""A built wheel, installed into a fresh virtual environment, runs from an empty folder.

Everything the package reads at run time (policies, probe suite, safety evaluation data, audit
frameworks, the demo model) must ship inside it: a checkout next to the code hides a missing
file. The fresh venv gets the dependencies from the running interpreter's site-packages as a
plain path line in a `.pth` file, so that site-packages' own `.pth` files (the editable finder
of the source tree) stay inactive, and PYTHONPATH is removed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Not part of what a build reads (and large or private).
SKIP = (".git", ".venv", "runs", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        COLUMNS="120",
        NO_COLOR="1",
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        MPLCONFIGDIR=str(home / ".mpl"),
    )
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from a copy of this tree and install it into a fresh venv."""
    tmp = tmp_path_factory.mktemp("wheel")
    home = tmp / "home"
    home.mkdir()
    env = _env(home)
    src = tmp / "src"  # the build writes build/ and *.egg-info: not into the tree under test
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(*SKIP))
    dist = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(dist)],
        check=True, env=env, capture_output=True, timeout=300, cwd=tmp,
    )  # fmt: skip
    (wheel,) = dist.glob("guarded_rl-*.whl")
    venv = tmp / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "-q", str(wheel)],
        check=True, env=env, capture_output=True, timeout=300, cwd=tmp,
    )  # fmt: skip
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, env=env,
    ).stdout.strip()  # fmt: skip
    deps = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(purelib) / "zz_dependencies.pth").write_text("\n".join(deps) + "\n", encoding="utf-8")
    return venv


def _checks(entry: Any, name: str) -> list[dict[str, Any]]:
    """Every check result called `name` anywhere in an audit entry."""
    if isinstance(entry, dict):
        if entry.get("name") == name and "metrics" in entry:
            return [entry]
        return [c for value in entry.values() for c in _checks(value, name)]
    if isinstance(entry, list):
        return [c for value in entry for c in _checks(value, name)]
    return []


def _run(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(args), capture_output=True, text=True, cwd=cwd, timeout=600,
        env=_env(venv.parent / "home"),
    )  # fmt: skip
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stderr[-3000:]}"
    return result


def test_the_installed_wheel_runs_from_an_empty_folder(venv: Path, tmp_path: Path) -> None:
    bin_dir = venv / "bin"
    python, cli = str(bin_dir / "python"), str(bin_dir / "guarded-rl")
    where = _run(venv, tmp_path, python, "-c", "import guarded_rl; print(guarded_rl.__file__)")
    site = Path(where.stdout.strip()).resolve()
    assert site.is_relative_to(venv.resolve()), site
    assert not site.is_relative_to(ROOT), site

    ran = _run(venv, tmp_path, cli, "run", "--cycles", "11", "--seed", "0", "--run-dir", "r1")
    assert "cycles 11/11" in ran.stdout or "11 cycles" in ran.stdout, ran.stdout[-2000:]
    summary = (tmp_path / "r1" / "summary.json").read_text(encoding="utf-8")
    assert '"outcome": "completed"' in summary, summary
    log = (tmp_path / "r1" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    probed_updates = [c for line in log for c in _checks(json.loads(line), "bias_output")]
    assert any("axes" in c["metrics"] for c in probed_updates), "no update was probed"

    reported = _run(venv, tmp_path, cli, "report", "r1", "--format", "md")  # shipped frameworks
    assert (tmp_path / "r1" / "report-eu-ai-act.md").is_file(), reported.stdout
    shown = _run(venv, tmp_path, cli, "--version")
    assert shown.stdout.split() == ["guarded-rl", "0.1.0"], shown.stdout
    probed = _run(venv, tmp_path, cli, "bias", "probe", "--json")
    assert '"axes"' in probed.stdout
    checked = _run(venv, tmp_path, cli, "policy", "check", "strict")
    assert "policy 'strict'" in checked.stdout, checked.stdout
    evaluated = _run(venv, tmp_path, python, "-m", "guarded_rl.safety.evaluate")
    assert "recall" in evaluated.stdout.lower(), evaluated.stdout

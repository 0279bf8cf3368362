"""A run directory the user cannot write is one line naming it, never a traceback (issue 15,
item 22). Root ignores file modes, so as root the directory is made read-only the way a
read-only mount is: a read-only bind mount in a private mount namespace (`unshare -m`);
as anyone else, by taking its write bits away."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).parent / "guarded-rl")


def _can_bind_read_only(probe: Path) -> bool:
    probe.mkdir(exist_ok=True)
    script = f'mount --bind "{probe}" "{probe}" && mount -o remount,bind,ro "{probe}" "{probe}"'
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True)
    return done.returncode == 0


@pytest.fixture(scope="module")
def read_only(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """`run(folder, *args)`: guarded-rl ARGS with `folder` (and all below it) read-only."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120", "NO_COLOR": "1"}
    as_root = os.geteuid() == 0
    if as_root and not (shutil.which("unshare") and _can_bind_read_only(
        tmp_path_factory.mktemp("probe")
    )):  # fmt: skip
        pytest.fail("running as root, and a read-only bind mount (unshare -m) is not allowed")
    changed: list[Path] = []

    def run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
        if as_root:
            script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
            cmd = ["unshare", "-m", "sh", "-c", script, str(folder), CLI, *args]
        else:
            for path in [folder, *folder.rglob("*")]:
                path.chmod(path.stat().st_mode & ~0o222)
                changed.append(path)
            cmd = [CLI, *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)

    yield run
    for path in changed:  # let pytest clean up
        path.chmod(path.stat().st_mode | 0o200)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A finished two-cycle run (one update applied) and a feedback file for it."""
    from guarded_rl.policy import parse_policy
    from guarded_rl.runner import RunConfig, run

    base = tmp_path_factory.mktemp("ro")
    run_dir = base / "run"
    run(RunConfig(run_dir=str(run_dir), cycles=2, users_per_cycle=8, seed=3),
        parse_policy({"fairness": {"probe_every": 0}}), key_file=base / "run.key")  # fmt: skip
    items = subprocess.run([CLI, "feedback", "items", str(run_dir), "--json"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    item = json.loads(items.stdout)["items"][0]
    feedback = base / "feedback.jsonl"
    line = {"id": "ro-1", "user_id": "reader-9-00001", "item_id": item["item_id"],
            "reward": 1.0, "purposes": ["training"]}  # fmt: skip
    feedback.write_text(json.dumps(line) + "\n")
    return run_dir, feedback


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


COMMANDS: dict[str, list[str]] = {
    "consent grant": ["consent", "grant", "{run}", "--user", "reader-9-00001",
                      "--purpose", "training"],
    "consent show": ["consent", "show", "{run}", "--user", "reader-0-00001"],
    "feedback import": ["feedback", "import", "{run}", "{feedback}"],
    "run --resume": ["run", "--resume", "{run}", "--cycles", "1"],
    "report": ["report", "{run}", "--format", "json"],
    "replay": ["replay", "{run}", "--update", "1"],
    "rollback": ["rollback", "{run}", "--to", "0", "--reason", "read-only test"],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_read_only_run_directory_is_one_line_not_a_traceback(
    read_only, finished: tuple[Path, Path], name: str
) -> None:
    run_dir, feedback = finished
    before = _snapshot(run_dir)
    args = [a.format(run=run_dir, feedback=feedback) for a in COMMANDS[name]]
    result = read_only(run_dir, *args)
    assert "Traceback" not in result.stderr, result.stderr
    if name == "replay" and result.returncode == 0:  # replay need not write: fine when it works
        return
    assert result.returncode == 1, (result.returncode, result.stderr)
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert str(run_dir) in line, line
    assert "read-only" in line.lower() or "permission" in line.lower(), line
    assert result.stderr.strip().endswith(line)
    assert _snapshot(run_dir) == before


def test_a_new_run_in_a_read_only_folder_is_one_line(read_only, tmp_path: Path) -> None:
    parent = tmp_path / "ro-parent"
    parent.mkdir()
    result = read_only(parent, "run", "--cycles", "1", "--run-dir", str(parent / "run"))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert str(parent) in line
    assert not (parent / "run").exists()

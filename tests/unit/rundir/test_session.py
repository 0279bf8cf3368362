"""The run session: everything checked before the first write, the lock held for the whole
block, a writer's log proven and its key the run's own before anything is appended."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from guarded_rl.audit.head import generate_signing_key
from guarded_rl.audit.log import read_log
from guarded_rl.errors import InputError, IntegrityError
from guarded_rl.policy import parse_policy
from guarded_rl.rundir.lock import RunInUse, run_lock
from guarded_rl.rundir.paths import RunPaths
from guarded_rl.rundir.session import create_session, open_session, plan_new_run

POLICY = parse_policy({})


def _new_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    plan = plan_new_run(run_dir, POLICY, key_file=tmp_path / "keys" / "run.key", operator="op")
    with create_session(plan, {"integration": "test"}) as session:
        session.start(POLICY, operator=plan, base_sha256="0" * 64, base_checkpoint_id="c" * 64)
        session.finish({"outcome": "completed", "live_sha256": "0" * 64})
    return run_dir


def test_a_new_run_has_its_files_private_and_its_start_and_finish_signed(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    run_dir = _new_run(tmp_path)
    paths = RunPaths(run_dir)
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert paths.recorded_key_file() == tmp_path / "keys" / "run.key"
    assert paths.recorded_store_key_file() == tmp_path / "keys" / "run.store.key"
    for secret in (paths.recorded_key_file(), paths.recorded_store_key_file()):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    types = [e.type for e in read_log(paths.log)]
    assert types == ["run_started", "checkpoint_saved", "run_finished"]
    with open_session(run_dir, writing=True) as session:  # proves against the signed head
        assert session.signed.head.tree_size == 3


def test_nothing_is_written_when_a_new_run_cannot_start(tmp_path: Path) -> None:
    taken = tmp_path / "taken.key"
    generate_signing_key(taken)
    with pytest.raises(InputError, match="already exists"):
        plan_new_run(tmp_path / "run", POLICY, key_file=taken)
    assert not (tmp_path / "run").exists()
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        plan_new_run(full, POLICY, key_file=tmp_path / "new.key")
    assert sorted(p.name for p in full.iterdir()) == ["notes.txt"]
    assert not (tmp_path / "new.key").exists()


def test_the_session_holds_the_lock_for_its_whole_block(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    run_dir = _new_run(tmp_path)
    with open_session(run_dir), pytest.raises(RunInUse):
        open_session(run_dir).__enter__()
    with run_lock(run_dir):  # released when the block ended
        pass


def test_another_runs_key_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    run_dir = _new_run(tmp_path)
    before = RunPaths(run_dir).log.read_bytes()
    stranger = tmp_path / "stranger.key"
    generate_signing_key(stranger)
    refused = pytest.raises(InputError, match="not this run's key")
    with refused, open_session(run_dir, key_file=stranger, writing=True):
        pass
    assert RunPaths(run_dir).log.read_bytes() == before


def test_a_reading_session_cannot_append(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    run_dir = _new_run(tmp_path)
    with open_session(run_dir) as session:
        assert session.history.started["run_id"] == session.run_id
        with pytest.raises(InputError, match="reading only"):
            session.append("retention_purge", {"retention_days": 1, "feedback_rows": 0})


def test_a_forged_log_is_refused_before_the_session_opens(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    run_dir = _new_run(tmp_path)
    log = RunPaths(run_dir).log
    log.write_bytes(log.read_bytes().replace(b'"completed"', b'"stopped"'))
    with pytest.raises(IntegrityError), open_session(run_dir, writing=True):
        pass


def test_a_run_toml_of_the_wrong_shape_falls_back_to_the_legacy_key_place(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.toml").write_text('run = "not a table"\n')
    assert RunPaths(run_dir).recorded_key_file() == tmp_path / "run.key"
    (run_dir / "run.toml").write_bytes(b"\xff\xfe")
    assert RunPaths(run_dir).recorded_key_file() == tmp_path / "run.key"

"""RunHistory knows which applied updates are in the live weights after rollbacks."""

from __future__ import annotations

from pathlib import Path

from guarded_rl.audit.history import RunHistory
from guarded_rl.audit.log import AuditLog
from guarded_rl.commands.consent import _trained_updates


def _update(log: AuditLog, cycle: int, base: str) -> str:
    made = f"w{cycle}"
    log.append("update_proposed", {"cycle": cycle, "base_sha256": base, "candidate_sha256": made})
    log.append("update_approved", {"cycle": cycle})
    log.append("update_applied", {"cycle": cycle, "model_sha256": made})
    return made


def _history(tmp_path: Path) -> RunHistory:
    """Updates 0..4 applied, rollback to 2, then updates 5 and 6 made from 2's weights."""
    with AuditLog(tmp_path / "audit.jsonl") as log:
        log.append("run_started", {"run_id": "r", "base_sha256": "w-start"})
        live = "w-start"
        for cycle in range(5):
            live = _update(log, cycle, live)
        log.append("rollback", {"to_update": 2, "model_sha256": "w2", "reason": "x"})
        live = _update(log, 5, "w2")
        _update(log, 6, live)
    return RunHistory.load(tmp_path)


def test_updates_undone_by_a_rollback_are_not_live(tmp_path: Path) -> None:
    history = _history(tmp_path)
    assert history.live_sha256() == "w6"
    assert history.live_cycles() == [0, 1, 2, 5, 6]


def test_a_rollback_to_the_last_update_leaves_everything_live(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.jsonl") as log:
        log.append("run_started", {"run_id": "r", "base_sha256": "w-start"})
        _update(log, 1, _update(log, 0, "w-start"))
        log.append("rollback", {"to_update": 1, "model_sha256": "w1", "reason": "x"})
    history = RunHistory.load(tmp_path)
    assert history.live_cycles() == [0, 1]


def test_a_revoked_persons_updates_split_into_live_and_rolled_back(tmp_path: Path) -> None:
    trained = _trained_updates(_history(tmp_path), [3, 2, 4, 5, 7])
    assert [u["cycle"] for u in trained["applied_updates"]] == [2, 3, 4, 5]
    assert [u["cycle"] for u in trained["live_updates"]] == [2, 5]
    assert [u["cycle"] for u in trained["rolled_back_updates"]] == [3, 4]
    assert trained["rollback_target"] == 1  # the last live update before the first affected one


def test_only_rolled_back_updates_need_no_rollback(tmp_path: Path) -> None:
    trained = _trained_updates(_history(tmp_path), [3, 4])
    assert trained["live_updates"] == [] and trained["rollback_target"] is None
    assert [u["cycle"] for u in trained["rolled_back_updates"]] == [3, 4]

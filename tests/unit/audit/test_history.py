"""RunHistory knows which applied updates are in the live weights after rollbacks."""

from __future__ import annotations

import hashlib
from pathlib import Path

from guarded_rl.audit.history import RunHistory
from guarded_rl.audit.log import AuditLog
from guarded_rl.commands.consent import _trained_updates


def _w(name: str) -> str:
    """A weights commitment for a readable name (the log records SHA-256 digests)."""
    return hashlib.sha256(name.encode()).hexdigest()


THRESHOLDS = {"safety_filters": ["pii"], "profanity_threshold": 0.5, "blocked_penalty": -1.0,
              "max_step_kl": 0.01, "reject_step_kl": 0.5, "min_group_size": 5,
              "max_group_share": 0.95, "max_reward_gap": 0.5}  # fmt: skip


def _update(log: AuditLog, cycle: int, base: str) -> str:
    made = _w(f"w{cycle}")
    log.append(
        "update_proposed",
        {"cycle": cycle, "base_sha256": base, "candidate_sha256": made, "stats": {},
         "rewards": {}, "layer_change": {}, "checks": [], "thresholds": THRESHOLDS},
    )  # fmt: skip
    log.append("update_approved", {"cycle": cycle, "rule": "r", "reasons": [],
                                   "approver": "gate:auto"})  # fmt: skip
    log.append("update_applied", {"cycle": cycle, "model_sha256": made})
    return made


def _started(log: AuditLog) -> None:
    log.append("run_started", {"run_id": "0" * 16, "base_sha256": _w("w-start"), "policy": {},
               "base_checkpoint_id": _w("c"), "versions": {}, "key_id": "0" * 16,
               "public_key": "-----BEGIN PUBLIC KEY-----\n"})  # fmt: skip


def _rollback(log: AuditLog, to_update: int, live: str) -> None:
    log.append("rollback", {"to_update": to_update, "model_sha256": _w(f"w{to_update}"),
               "reason": "x", "checkpoint_id": _w("c"), "with_optimizer": False,
               "previous_live_sha256": live})  # fmt: skip


def _history(tmp_path: Path) -> RunHistory:
    """Updates 0..4 applied, rollback to 2, then updates 5 and 6 made from 2's weights."""
    with AuditLog(tmp_path / "audit.jsonl") as log:
        _started(log)
        live = _w("w-start")
        for cycle in range(5):
            live = _update(log, cycle, live)
        _rollback(log, 2, live)
        live = _update(log, 5, _w("w2"))
        _update(log, 6, live)
    return RunHistory.load(tmp_path)


def test_updates_undone_by_a_rollback_are_not_live(tmp_path: Path) -> None:
    history = _history(tmp_path)
    assert history.live_sha256() == _w("w6")
    assert history.live_cycles() == [0, 1, 2, 5, 6]


def test_a_rollback_to_the_last_update_leaves_everything_live(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.jsonl") as log:
        _started(log)
        live = _update(log, 1, _update(log, 0, _w("w-start")))
        _rollback(log, 1, live)
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

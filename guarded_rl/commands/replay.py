"""Re-executing recorded updates, and rolling back to one.

Replay starts each update from its parent weights and optimizer state (a checkpoint, or the
re-executed previous updates) with the recorded batch, and compares the resulting weights
with the commitment in the log, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guarded_rl.audit.history import ReplayMismatch
from guarded_rl.audit.live_summary import refresh_live_state
from guarded_rl.consent.replay_store import ReplayInputsErased
from guarded_rl.errors import AuditError, InputError, first_few
from guarded_rl.rundir.session import RunSession, open_session
from guarded_rl.runner import OpenRun, open_run


@dataclass(frozen=True, slots=True)
class ReplayLine:
    cycle: int
    status: str  # reproduced | differs | not replayable
    detail: str = ""
    max_abs_diff: float | None = None


def replay_updates(
    opened: OpenRun,
    update: int | None = None,
    *,
    on_update: Callable[[int, int, int], None] | None = None,
) -> list[ReplayLine]:
    """Re-execute each recorded update (or only `update`) and compare its weights with the
    record. `on_update(cycle, index, total)` hears of each before it starts."""
    history = opened.history
    if update is not None and update not in history.proposals:
        known = sorted(history.proposals)
        raise InputError(
            "no recorded update for this cycle",
            field="--update",
            got=update,
            expected=f"one of {first_few(known)}",
        )
    cycles = [update] if update is not None else sorted(history.proposals)
    lines = []
    for index, cycle in enumerate(cycles):
        if on_update is not None:
            on_update(cycle, index, len(cycles))
        recorded = history.proposals[cycle]["candidate_sha256"]
        try:
            proposal = opened.rebuilder.recompute(cycle)
        except ReplayInputsErased as exc:
            lines.append(ReplayLine(cycle, "not replayable", exc.message))
            continue
        except ReplayMismatch as exc:
            lines.append(ReplayLine(cycle, "differs", f"its parent: {exc.one_line()}"))
            continue
        except AuditError as exc:
            lines.append(ReplayLine(cycle, "not replayable", exc.one_line()))
            continue
        if proposal.candidate_sha256 == recorded:
            opened.rebuilder.remember(recorded, proposal.candidate_state, proposal.optimizer_state)
            lines.append(ReplayLine(cycle, "reproduced", recorded[:12], 0.0))
            continue
        diff = _largest_difference(opened, recorded, proposal.candidate_state)
        lines.append(
            ReplayLine(
                cycle,
                "differs",
                f"got {proposal.candidate_sha256[:12]}, recorded {recorded[:12]}",
                diff,
            )
        )
    return lines


def _largest_difference(opened: OpenRun, recorded: str, state: dict[str, Any]) -> float | None:
    """Max |difference| against the recorded weights, when they are stored somewhere."""
    checkpoint_id = opened.history.checkpoints.get(recorded) or next(
        (
            e.payload["checkpoint_id"]
            for e in opened.history.entries
            if e.type == "update_pending" and e.payload.get("candidate_sha256") == recorded
        ),
        None,
    )
    if checkpoint_id is None:
        return None
    stored = opened.checkpoints.load_model(checkpoint_id)
    return max(float((stored[k] - state[k]).abs().max()) for k in stored)


def rollback(
    run_dir: str | Path,
    to_update: int,
    reason: str,
    *,
    key_file: Path | None = None,
    on_loaded: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Make the weights and optimizer state after `to_update` live again, on the record
    (never while the run is live: the session holds its lock). `on_loaded` hears when the
    log is verified and the model loaded, before the state is rebuilt."""
    reason = " ".join(reason.split())
    if not reason:
        raise InputError(
            "a rollback needs a reason",
            field="--reason",
            got="",
            expected="a short text saying why",
        )
    with open_session(run_dir, key_file=key_file, writing=True) as session:
        history = session.history
        if to_update not in history.applied:
            applied = sorted(history.applied)
            raise InputError(
                "that update was never applied",
                field="--to",
                got=to_update,
                expected=f"an applied update: {first_few(applied)}",
            )
        opened = open_run(session.run_dir, session=session)
        if on_loaded is not None:
            on_loaded()
        payload = _rollback(session, opened, to_update, reason)
        refresh_live_state(run_dir)  # summary.json names the weights now live
        return payload


def _rollback(
    session: RunSession, opened: OpenRun, to_update: int, reason: str
) -> dict[str, Any]:
    history = session.history
    target = history.applied[to_update]["model_sha256"]
    state, optimizer = opened.rebuilder.state_for(target)
    checkpoint_id = opened.checkpoints.save(state, optimizer)
    payload = {
        "to_update": to_update,
        "reason": reason[:500],
        "model_sha256": target,
        "checkpoint_id": checkpoint_id,
        "with_optimizer": True,
        "previous_live_sha256": history.live_sha256(),
    }
    session.record([("rollback", payload)])
    return payload

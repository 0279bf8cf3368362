"""A run's history as its audit log tells it, and the weights at any point of it.

`RunHistory` indexes a verified log: proposals and applied updates by cycle, checkpoints by
the weights they hold, rollbacks, and which weights are live. `StateRebuilder` gives the model
and optimizer state for any recorded weights commitment: from a checkpoint when one exists,
otherwise by re-executing the recorded updates from the nearest earlier checkpoint (and
checking every step reproduces its commitment).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from guarded_rl.audit.commitments import batch_commitment
from guarded_rl.audit.events import (
    CheckpointSaved,
    CycleUpdateProposed,
    Event,
    Rollback,
    StepUpdateProposed,
    UpdateApplied,
    UpdateApproved,
    UpdatePending,
    UpdateRejected,
    parse_event,
)
from guarded_rl.audit.log import AuditEntry, read_log
from guarded_rl.errors import AuditError, InputError, IntegrityError
from guarded_rl.progress import report
from guarded_rl.records import Batch, UpdateProposal
from guarded_rl.rundir.paths import LOG_FILE

if TYPE_CHECKING:  # torch stays unloaded for commands that only read the log
    from guarded_rl.audit.checkpoints import CheckpointStore
    from guarded_rl.weights import State

LIVE_CHANGING = ("update_applied", "rollback")
ProposalEvent = CycleUpdateProposed | StepUpdateProposed


class BatchSource(Protocol):
    """Where recorded training batches are kept (the run's sealed replay inputs)."""

    def load_batch(self, cycle: int) -> Batch: ...


class Restorable(Protocol):
    """A learner whose model and optimizer state can be set (to re-execute an update)."""

    def restore(self, state: State, optimizer: dict[str, Any]) -> None: ...


class ReplayMismatch(IntegrityError):
    """Re-executing a recorded update gave other weights than the log recorded."""


@dataclass
class RunHistory:
    """`events` are the entries parsed into their typed payloads (`audit/events.py`); the dict
    views (`proposals`, `applied`, `started`) are the same payloads as written."""

    run_dir: Path
    entries: list[AuditEntry]
    events: list[Event] = field(default_factory=list)
    proposed: dict[int, ProposalEvent] = field(default_factory=dict)  # cycle -> typed proposal
    proposals: dict[int, dict[str, Any]] = field(default_factory=dict)
    outcomes: dict[int, str] = field(default_factory=dict)  # cycle -> approved/pending/rejected
    applied: dict[int, dict[str, Any]] = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)  # model sha -> checkpoint id
    produced_by: dict[str, int] = field(default_factory=dict)  # model sha -> applying cycle

    @classmethod
    def load(cls, run_dir: str | Path, *, while_written: bool = False) -> RunHistory:
        """Index the run's audit log; the chain must verify first (`while_written`: a live
        run's log, whose last line may be half written), and every entry fit the schema."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise InputError("no such run directory", field="RUN_DIR", got=str(run_dir))
        entries = read_log(run_dir / LOG_FILE, while_written=while_written)
        if not entries or entries[0].type != "run_started":
            raise AuditError("audit log does not start with run_started", file=str(run_dir))
        events = [parse_event(entry, file=str(run_dir / LOG_FILE)) for entry in entries]
        history = cls(run_dir, entries, events)
        for event, entry in zip(events, entries, strict=True):
            p = event.payload
            if isinstance(p, CycleUpdateProposed | StepUpdateProposed):
                history.proposed[p.cycle] = p
                history.proposals[p.cycle] = entry.payload
            elif isinstance(p, UpdateApproved | UpdatePending | UpdateRejected):
                history.outcomes[p.cycle] = event.type.removeprefix("update_")
            elif isinstance(p, UpdateApplied):
                history.applied[p.cycle] = entry.payload
                history.produced_by[p.model_sha256] = p.cycle
            if isinstance(p, CheckpointSaved | Rollback) and p.with_optimizer:
                history.checkpoints[p.model_sha256] = p.checkpoint_id
            elif isinstance(p, UpdatePending) and p.with_optimizer:
                # a candidate kept for review: its weights and optimizer state are stored
                history.checkpoints.setdefault(p.candidate_sha256, p.checkpoint_id)
        return history

    @property
    def started(self) -> dict[str, Any]:
        return self.entries[0].payload

    def live_sha256(self) -> str:
        """Weights live at the end of the log (after the last update or rollback)."""
        live: str = self.started["base_sha256"]
        for event in self.events:
            if isinstance(event.payload, UpdateApplied | Rollback):
                live = event.payload.model_sha256
        return live

    def live_cycles(self) -> list[int]:
        """The applied updates whose effect is in the live weights: the chain of parents from
        the live weights back to the start model. An update undone by a rollback is not on it
        (a rollback to update 2 leaves 0..2, and the updates made from there on resume)."""
        lineage: list[int] = []
        sha = self.live_sha256()
        while (cycle := self.produced_by.get(sha)) is not None and cycle not in lineage:
            lineage.append(cycle)
            proposal = self.proposed.get(cycle)
            sha = proposal.base_sha256 if proposal is not None else ""
        return sorted(lineage)

    def last_cycle(self) -> int:
        cycles = [e.payload["cycle"] for e in self.entries if "cycle" in e.payload]
        return max(cycles) if cycles else -1

    def entries_of(self, cycle: int) -> list[AuditEntry]:
        return [e for e in self.entries if e.payload.get("cycle") == cycle]


class StateRebuilder:
    """Model + optimizer state for recorded weights, from checkpoints and replayed updates."""

    def __init__(
        self,
        history: RunHistory,
        learner: Restorable,
        checkpoints: CheckpointStore,
        replay_store: BatchSource,
        propose: Callable[[Batch], UpdateProposal],
    ) -> None:
        self.history = history
        self.learner = learner
        self.checkpoints = checkpoints
        self.replay_store = replay_store
        self._propose = propose  # batch -> UpdateProposal on the learner's live state
        self._cache: dict[str, tuple[State, dict[str, Any]]] = {}

    def recorded_batch(self, cycle: int) -> Batch:
        """The batch of an update, checked against the commitment in its audit entry."""
        batch = self.replay_store.load_batch(cycle)
        if batch_commitment(batch) != self.history.proposals[cycle]["batch_sha256"]:
            raise AuditError(
                "replay inputs do not match the batch commitment in the log",
                field="cycle",
                got=cycle,
            )
        return batch

    def recompute(self, cycle: int) -> UpdateProposal:
        """Re-execute the update of `cycle` from its parent state."""
        parent = self.history.proposals[cycle]["base_sha256"]
        state, optimizer = self.state_for(parent)
        batch = self.recorded_batch(cycle)
        self.learner.restore(state, optimizer)
        return self._propose(batch)

    def remember(self, model_sha256: str, state: State, optimizer: dict[str, Any]) -> None:
        """Keep a reproduced state: the next update's parent is usually this one."""
        if len(self._cache) >= 3:
            self._cache.pop(next(iter(self._cache)))
        self._cache[model_sha256] = (state, optimizer)

    def state_for(self, model_sha256: str) -> tuple[State, dict[str, Any]]:
        if model_sha256 in self._cache:
            return self._cache[model_sha256]
        checkpoint_id = self.history.checkpoints.get(model_sha256)
        if checkpoint_id is not None:
            state, optimizer = self.checkpoints.load(checkpoint_id)
            if optimizer is None:
                raise AuditError(
                    "checkpoint lacks optimizer state", field="checkpoint_id", got=checkpoint_id
                )
        else:
            cycle = self.history.produced_by.get(model_sha256)
            if cycle is None:
                raise AuditError(
                    "no checkpoint and no recorded update produces these weights",
                    field="model_sha256",
                    got=model_sha256[:12],
                )
            proposal = self.recompute(cycle)
            report(f"re-executed recorded update {cycle}", cycle, self.history.last_cycle())
            if proposal.candidate_sha256 != model_sha256:
                raise ReplayMismatch(
                    "re-executing the update does not reproduce its recorded weights",
                    field="cycle",
                    got=cycle,
                )
            state, optimizer = proposal.candidate_state, proposal.optimizer_state
        self.remember(model_sha256, state, optimizer)
        return state, optimizer

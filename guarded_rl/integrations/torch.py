"""Guard rails for an existing PyTorch training loop: replace `optimizer.step()` by
`guard.step()`.

    guard = GuardedLoop(model, optimizer, run_dir="runs/mine", probe=PROBE_INPUTS)
    for batch in data:
        loss = ...                      # your loss, e.g. -(logp * (reward - baseline)).mean()
        optimizer.zero_grad(); loss.backward()
        guard.step(rewards=rewards)     # was: optimizer.step()
    guard.close()

`step` snapshots the weights and the optimizer state, takes the optimizer step, measures the
drift (KL between the model's output distributions on `probe` inputs before and after, and
the relative parameter change), runs your checks, and lets the policy's gate decide: the step
is kept (approved), or the weights and optimizer state are restored exactly (rejected, or
pending: then the candidate is stored in the run's review queue, for `guarded-rl review`).
Every step is an entry of the run's signed audit log, which `guarded-rl audit verify` checks.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from torch import nn

from guarded_rl.approval.gate import PolicyGate
from guarded_rl.approval.live import attach_review, settle
from guarded_rl.approval.queue import operator_identity, operator_record, operators_of
from guarded_rl.atomic import atomic_write
from guarded_rl.audit.checkpoints import CheckpointStore
from guarded_rl.audit.events import SCHEMA_VERSION
from guarded_rl.audit.head import generate_signing_key, key_id, public_key_pem, write_public_key
from guarded_rl.audit.log import LOG_FILE, AuditLog
from guarded_rl.audit.run_lock import run_lock
from guarded_rl.audit.signer import (
    HEAD_FILE,
    PUBLIC_KEY_FILE,
    HeadSigner,
    origin_of,
)
from guarded_rl.errors import InputError, require_callable
from guarded_rl.guard import checks_payload, run_check, thresholds_of
from guarded_rl.learn.proposing import ProposingLearner, layer_change, relative_change
from guarded_rl.policy import GuardPolicy, load_policy
from guarded_rl.records import Batch, CheckResult, Decision, Sample, UpdateProposal, Verdict
from guarded_rl.settlement import Settlement
from guarded_rl.weights import state_sha256

#: `probe(model) -> logits [N, C]` on fixed inputs: what the drift check compares.
Probe = Callable[[nn.Module], torch.Tensor]
#: A check on a step: `(proposal, batch) -> CheckResult` (the batch is empty for plain loops).
StepCheck = Callable[[UpdateProposal, Batch], CheckResult]


@dataclass
class _Snapshot:
    """The live weights, optimizer state and probe outputs just before an optimizer step."""

    state: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    probe_logp: torch.Tensor


class _StepLearner(ProposingLearner):
    """A proposal from an optimizer step the user's loop (or trainer) takes."""

    def snapshot(self, probe: Probe) -> _Snapshot:
        with torch.no_grad():
            before = torch.log_softmax(probe(self.module).float(), dim=-1)
        return _Snapshot(*self._capture(), before)

    def proposal_after_step(
        self, cycle: int, snap: _Snapshot, probe: Probe, grad_norm: float | None = None
    ) -> tuple[UpdateProposal, float]:
        """Keep what the optimizer step made as a proposal, put the snapshot back exactly;
        also the probe KL(candidate || live)."""
        try:
            with torch.no_grad():
                after = torch.log_softmax(probe(self.module).float(), dim=-1)
            candidate, candidate_opt = self._capture()
        finally:
            self._put_back(snap.state, snap.optimizer)
        kl = float((after.exp() * (after - snap.probe_logp)).sum(-1).mean())
        stats = {"param_change_rel": relative_change(snap.state, candidate)}
        if grad_norm is not None:
            stats["grad_norm"] = grad_norm
        return (
            UpdateProposal(
                cycle=cycle,
                base_sha256=self.live_sha256,
                candidate_sha256=state_sha256(candidate),
                candidate_state=candidate,
                optimizer_state=candidate_opt,
                stats=stats,
                layer_change=layer_change(snap.state, candidate),
            ),
            kl,
        )

    def propose_step(self, cycle: int, probe: Probe) -> tuple[UpdateProposal, float]:
        """Clip, take the optimizer step, keep it as a proposal, restore everything."""
        snap = self.snapshot(probe)
        try:
            params = [p for p in self.module.parameters() if p.requires_grad]
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm))
            self.optimizer.step()
        except BaseException:
            self._put_back(snap.state, snap.optimizer)  # a step that raised changes nothing
            raise
        finally:
            self.optimizer.zero_grad(set_to_none=True)
        return self.proposal_after_step(cycle, snap, probe, grad_norm)  # puts the snapshot back


class GuardedLoop:
    """The run directory (default `runs/torch-<time>`), signed audit log, checkpoints, gate
    and review queue of a plain PyTorch loop. Holds the run's writer lock until `close()`."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        probe: Probe | torch.Tensor,
        run_dir: str | Path | None = None,
        policy: GuardPolicy | str | Path | None = None,
        checks: Sequence[StepCheck] = (),
        blocking: Collection[str] = (),
        key_file: str | Path | None = None,
        operator: str | None = None,
        operator_key: str | Path | None = None,
    ) -> None:
        """`checks` run on every step; a failed one holds the step for review, or rejects it
        when its name is in `blocking`. A check that raises has failed. With four-eyes on and a
        reviewers file, `operator_key` (the operator's reviewer key) signs the run's start."""
        from guarded_rl.runner import login_name, new_key_file, prepare_run_dir, review_registry

        if isinstance(probe, torch.Tensor):  # fixed inputs: the model's logits on them
            inputs = probe

            def probe(module: nn.Module) -> torch.Tensor:
                return module(inputs)

        require_callable(
            probe,
            field="probe",
            expected="fixed inputs (a tensor) or a function model -> logits on them",
        )
        self.policy = policy if isinstance(policy, GuardPolicy) else load_policy(policy)
        self.run_dir = Path(run_dir) if run_dir is not None else _new_run_dir()
        self.probe = probe
        self.checks = list(checks)
        self.blocking = frozenset(blocking)
        prepare_run_dir(self.run_dir)
        registry = review_registry(self.policy)
        operator_name, operator_signer = operator_identity(
            registry,
            operator,
            Path(operator_key) if operator_key is not None else None,
            four_eyes=self.policy.gate.four_eyes,
            default_name=login_name(),
        )
        key_path = new_key_file(self.run_dir, key_file, field="key_file")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock = run_lock(self.run_dir)
        self._lock.__enter__()  # one writer for the life of the loop
        try:
            self._start(model, optimizer, key_path, (operator_name, operator_signer), registry)
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        self._closed = False
        self._snapshot: _Snapshot | None = None
        self._pending_cycle = 0

    def _start(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        key_path: Path,
        operator: tuple[str, Ed25519PrivateKey | None],
        registry: Any,
    ) -> None:
        from guarded_rl.runner import run_toml, runtime_versions

        key = generate_signing_key(key_path)
        write_public_key(self.run_dir / PUBLIC_KEY_FILE, key.public_key())
        self.run_id = uuid.uuid4().hex[:16]
        run = {"integration": "torch"}
        atomic_write(self.run_dir / "run.toml", run_toml(run, self.policy, key_path).encode())
        self.learner = _StepLearner(model, optimizer, self.policy.learner.max_grad_norm)
        self.audit = AuditLog(self.run_dir / LOG_FILE)
        self.signer = HeadSigner(self.audit, key, origin_of(self.run_id), self.run_dir / HEAD_FILE)
        self.settlement = Settlement(
            policy=self.policy,
            learner=self.learner,
            audit=self.audit,
            checkpoints=CheckpointStore(self.run_dir / "checkpoints"),
        )
        self.gate = PolicyGate(self.policy.gate, blocking_checks=self.blocking)
        self.steps = 0
        model_state, optimizer_state = self.learner.checkpoint_state()
        base = self.settlement.checkpoints.save(model_state, optimizer_state)
        self.settlement.note_checkpoint(self.learner.live_sha256)
        started = self.audit.append(
            "run_started",
            {
                "schema_version": SCHEMA_VERSION,
                "run_id": self.run_id,
                "integration": "torch",
                "policy": self.policy.model_dump(),
                "base_sha256": self.learner.live_sha256,
                "base_checkpoint_id": base,
                "versions": runtime_versions(),
                "public_key": public_key_pem(key.public_key()),
                "key_id": key_id(key.public_key()),
                "operator": operator_record(
                    origin_of(self.run_id),
                    operator[0],
                    registry,
                    key=operator[1],
                    prev=self.audit.head,
                ),
            },
        )
        self.audit.append(
            "checkpoint_saved",
            {
                "checkpoint_id": base,
                "model_sha256": self.learner.live_sha256,
                "with_optimizer": True,
                "reason": "start",
            },
        )
        self.review = attach_review(
            self.settlement, origin=origin_of(self.run_id), operators=operators_of([started])
        )
        self.signer.sign()

    def step(
        self,
        *,
        rewards: Sequence[float] | None = None,
        screened: Mapping[str, int] | None = None,
    ) -> Decision:
        """Gate the optimizer step the loop would have taken (call it after `backward()`).

        `rewards` (the batch's rewards) and `screened` (counts such as blocked or redacted
        outputs) go into the step's audit entry as aggregates."""
        cycle = self._begin()
        proposal, kl = self.learner.propose_step(cycle, self.probe)
        return self._decide(cycle, proposal, kl, rewards, screened)

    def before_optimizer_step(self) -> None:
        """For trainers that take the optimizer step themselves (`GuardCallback`): remember
        the live state; `after_optimizer_step` then gates what the step made."""
        self._pending_cycle = self._begin()
        self._snapshot = self.learner.snapshot(self.probe)

    def after_optimizer_step(
        self,
        *,
        rewards: Sequence[float] | None = None,
        screened: Mapping[str, int] | None = None,
    ) -> Decision:
        if self._snapshot is None:
            raise InputError(
                "after_optimizer_step without before_optimizer_step",
                field="after_optimizer_step",
                expected="before_optimizer_step() right before the optimizer step",
            )
        snap, self._snapshot = self._snapshot, None
        proposal, kl = self.learner.proposal_after_step(self._pending_cycle, snap, self.probe)
        return self._decide(self._pending_cycle, proposal, kl, rewards, screened)

    def _begin(self) -> int:
        if self._closed:
            raise InputError("the guarded loop is closed", field="step")
        if settle(self.review, self.run_dir):  # decisions reviewers left meanwhile
            self.signer.sign()
        self.steps += 1
        return self.steps - 1

    def _decide(
        self,
        cycle: int,
        proposal: UpdateProposal,
        kl: float,
        rewards: Sequence[float] | None,
        screened: Mapping[str, int] | None = None,
    ) -> Decision:
        batch = Batch(cycle=cycle, samples=(), rewards=(), group_keys=(), feedback=())
        results = [CheckResult("probe_kl", math.isfinite(kl), {"kl_step": kl}, "measured")]
        results += [run_check(check, proposal, batch) for check in self.checks]
        decision = self.settlement.behind_review(self.gate.decide(proposal, results))
        payload = _proposed(self.policy, cycle, proposal, results, rewards)
        if screened:
            payload["screened"] = {str(k): int(v) for k, v in sorted(screened.items())}
        self.audit.append("update_proposed", payload)
        self.settlement.settle(cycle, proposal, decision)
        self.signer.sign()
        return decision

    def screen(self, texts: Sequence[str]) -> list[Verdict]:
        """The policy's content-safety screen on generated texts (before anyone sees them)."""
        from guarded_rl.safety.screen import screen_from_policy

        if not hasattr(self, "_screen"):
            self._screen = screen_from_policy(self.policy.safety)
        samples = [
            Sample(f"s{self.steps}-{i}", self.steps, "", "", text, (), ())
            for i, text in enumerate(texts)
        ]
        return self._screen.screen(samples)

    def close(self) -> None:
        """Checkpoint the live weights, finish and sign the log, release the run directory."""
        if self._closed:
            return
        self._closed = True
        try:
            self.settlement.save_checkpoint("final")
            self.audit.append(
                "run_finished",
                {
                    "outcome": "completed",
                    "steps": self.steps,
                    "live_sha256": self.learner.live_sha256,
                    "applied": self.settlement.applied,
                },
            )
            self.signer.sign()
            self.audit.close()
        finally:
            self._lock.__exit__(None, None, None)

    def __enter__(self) -> GuardedLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _new_run_dir() -> Path:
    from datetime import datetime

    return Path("runs") / datetime.now().strftime("torch-%Y%m%d-%H%M%S-%f")


def _proposed(
    policy: GuardPolicy,
    cycle: int,
    proposal: UpdateProposal,
    results: list[CheckResult],
    rewards: Sequence[float] | None,
) -> dict[str, Any]:
    reward_stats: dict[str, Any] = {}
    if rewards is not None:
        values = [float(r) for r in rewards]
        reward_stats = {
            "count": len(values),
            "mean": round(sum(values) / len(values), 6) if values else None,
        }
    return {
        "cycle": cycle,
        "base_sha256": proposal.base_sha256,
        "candidate_sha256": proposal.candidate_sha256,
        "stats": {k: round(v, 6) for k, v in proposal.stats.items()},
        "rewards": reward_stats,
        "layer_change": proposal.layer_change,
        "checks": checks_payload(results),
        "thresholds": thresholds_of(policy),
    }

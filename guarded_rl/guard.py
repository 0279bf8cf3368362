"""The Guard: the one place that knows the order of a guarded cycle.

generate → screen → (shown) feedback / (blocked) penalty → consent → batch → propose →
checks → gate → apply or hold → audit. Every stage is a small protocol; the Guard knows
nothing of how a stage works, only what it returns.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from guarded_rl.approval.gate import ApprovalGate
from guarded_rl.approval.queue import QueuedProposal, ReviewDesk
from guarded_rl.audit.checkpoints import CheckpointStore
from guarded_rl.audit.commitments import batch_commitment
from guarded_rl.audit.log import AuditLog
from guarded_rl.consent.replay_store import ReplayStore
from guarded_rl.consent.store import FeedbackStore
from guarded_rl.errors import InputError
from guarded_rl.policy import GuardPolicy
from guarded_rl.records import (
    Batch,
    CheckResult,
    Decision,
    Feedback,
    Outcome,
    Request,
    Sample,
    UpdateProposal,
)
from guarded_rl.safety.screen import SafetyScreen, shown_form
from guarded_rl.settlement import Settlement


class Generator(Protocol):
    """Produces `k` samples for every request (the model stage)."""

    def generate(self, requests: Sequence[Request], k: int, cycle: int) -> list[Sample]: ...


class FeedbackSource(Protocol):
    """People (or simulated people) rating what they were shown: sample id → reward."""

    def rate(self, shown: Sequence[Sample]) -> dict[str, float]: ...


class Learner(Protocol):
    """Turns a batch into a proposal, and installs a proposal once approved."""

    @property
    def live_sha256(self) -> str: ...

    def propose(self, batch: Batch) -> UpdateProposal: ...

    def apply(self, proposal: UpdateProposal) -> None: ...

    def checkpoint_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Live weights and optimizer state (what a checkpoint holds)."""
        ...


#: A check on a proposal; plain callables are enough.
UpdateCheck = Callable[[UpdateProposal, Batch], CheckResult]


@dataclass(frozen=True, slots=True)
class CycleReport:
    """What happened in one cycle, in numbers (this is what `summary.json` is built from)."""

    cycle: int
    generated: int
    blocked: int
    redacted: int
    escalated: int
    shown: int
    rated: int
    liked: int
    refused_no_consent: int
    training_samples: int
    outcome: Outcome | None  # None: no update was proposed (nothing to learn from)
    stats: dict[str, float] = field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def like_rate(self) -> float:
        return self.liked / self.rated if self.rated else float("nan")

    @property
    def blocked_share(self) -> float:
        return self.blocked / self.generated if self.generated else float("nan")


class Guard:
    """Runs guarded cycles and writes each one to the audit log."""

    def __init__(
        self,
        *,
        policy: GuardPolicy,
        generator: Generator,
        screen: SafetyScreen,
        feedback_source: FeedbackSource,
        consent: FeedbackStore,
        learner: Learner,
        checks: Sequence[UpdateCheck],
        gate: ApprovalGate,
        audit: AuditLog,
        checkpoints: CheckpointStore,
        replay_store: ReplayStore | None = None,
        on_update_recorded: Callable[[], object] | None = None,
        checkpointed: Sequence[str] = (),
    ) -> None:
        """`replay_store` keeps each batch (sealed per subject) so updates can be replayed;
        `on_update_recorded` runs after an update's entries are written (the runner signs a
        new head there); `checkpointed`: weights commitments already in a checkpoint."""
        self.policy = policy
        self.generator = generator
        self.screen = screen
        self.feedback_source = feedback_source
        self.consent = consent
        self.learner = learner
        self.checks = list(checks)
        self.gate = gate
        self.audit = audit
        self.checkpoints = checkpoints
        self.replay_store = replay_store
        self._on_update_recorded = on_update_recorded
        self.settlement = Settlement(
            policy=policy,
            learner=learner,
            audit=audit,
            checkpoints=checkpoints,
            checkpointed=checkpointed,
            stage=self._stage,
        )
        #: wall seconds spent per stage over all cycles (what the overhead benchmark reports)
        self.stage_seconds: defaultdict[str, float] = defaultdict(float)

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds[name] += time.perf_counter() - start

    def run_cycle(
        self, cycle: int, requests: Sequence[Request], *, rng_seed: int | None = None
    ) -> CycleReport:
        """One guarded cycle; `rng_seed` seeds torch for it (recorded, so it can be replayed)."""
        if rng_seed is not None:
            torch.manual_seed(rng_seed)
        k = self.policy.learner.samples_per_prompt
        with self._stage("generate"):
            samples = self.generator.generate(requests, k, cycle)
        with self._stage("screen"):
            verdicts = self.screen.screen(samples)
        pairs = list(zip(samples, verdicts, strict=True))
        shown = [shown_form(s, v) for s, v in pairs if v.allowed]  # redacted where needed
        blocked = [s for s, v in pairs if v.action == "block"]
        by_action = Counter(v.action for v in verdicts)
        with self._stage("feedback"):
            ratings = self._validated_ratings(self.feedback_source.rate(shown), shown)

        group_of = {r.subject: r.group for r in requests}
        penalty = self.policy.safety.blocked_penalty
        cap = self.policy.safety.redacted_reward_cap
        redacted = {s.sample_id for s, v in pairs if v.action == "redact"}
        capped = 0

        def reward_of(sample_id: str) -> float:
            """The rating; for a redacted output at most `redacted_reward_cap`: the person saw
            placeholders, the model wrote the personal data."""
            nonlocal capped
            rating = ratings[sample_id]
            if cap is not None and sample_id in redacted and rating > cap:
                capped += 1
                return cap
            return rating

        feedback = [
            Feedback(s.sample_id, s.subject, reward_of(s.sample_id), "person", group_of[s.subject])
            for s in shown
            if s.sample_id in ratings
        ] + [
            Feedback(s.sample_id, s.subject, penalty, "penalty", group_of[s.subject])
            for s in blocked
        ]
        with self._stage("consent"):
            purpose = self.policy.consent.purpose
            self.consent.register_items([s.sample_id for s in shown], cycle=cycle)
            _, refused = self.consent.record(feedback, purpose=purpose, cycle=cycle)
            # built from the store: only rows whose consent is valid now, groups only under
            # fairness-analysis consent
            trainable = self.consent.training_feedback(cycle, purpose=purpose)
            batch = _batch_of(cycle, samples, trainable)
        counts = {
            "generated": len(samples),
            "blocked": len(blocked),
            "redacted": by_action.get("redact", 0),
            "escalated": by_action.get("escalate", 0),
            "by_action": {a: by_action.get(a, 0) for a in ("allow", "redact", "escalate", "block")},
            "by_backend": dict(Counter(r.split(":")[0] for v in verdicts for r in set(v.reasons))),
            "blocked_by_reason": dict(
                Counter(r for v in verdicts if v.action == "block" for r in v.reasons)
            ),
            "shown": len(shown),
            "rated": len(ratings),
            "liked": int(sum(1 for v in ratings.values() if v > 0.5)),
            "redacted_rewards_capped": capped,
            "refused_no_consent": refused,
            "training_samples": len(batch),
        }
        base = {"cycle": cycle, "rng_seed": rng_seed, "counts": counts}
        if len(batch) == 0:
            with self._stage("audit"):
                self.audit.append(
                    "cycle_skipped", {**base, "live_sha256": self.learner.live_sha256}
                )
            return self._report(cycle, counts, None, {}, [])

        with self._stage("propose"):
            proposal = self.learner.propose(batch)
        with self._stage("checks"):
            results = [run_check(check, proposal, batch) for check in self.checks]
            decision = self.settlement.behind_review(self.gate.decide(proposal, results))
        with self._stage("replay_inputs"):
            if self.replay_store is not None:
                self.replay_store.store_batch(batch)
        with self._stage("audit"):
            self.audit.append(
                "update_proposed", self._proposed_payload(base, batch, proposal, results)
            )
        self.settlement.settle(cycle, proposal, decision)
        if self._on_update_recorded is not None:
            with self._stage("sign_head"):
                self._on_update_recorded()
        return self._report(cycle, counts, decision, proposal.stats, results)

    def _proposed_payload(
        self,
        base: dict[str, Any],
        batch: Batch,
        proposal: UpdateProposal,
        results: list[CheckResult],
    ) -> dict[str, Any]:
        """What an explanation needs: counts, commitments, statistics, checks, thresholds."""
        ranked = sorted(
            range(len(proposal.advantages)), key=lambda i: -abs(proposal.advantages[i])
        )[:5]
        policy = self.policy
        return {
            **base,
            "batch_sha256": batch_commitment(batch),
            "batch_size": len(batch),
            "feedback_by_source": dict(Counter(f.source for f in batch.feedback)),
            "base_sha256": proposal.base_sha256,
            "candidate_sha256": proposal.candidate_sha256,
            "stats": {k: round(v, 6) for k, v in proposal.stats.items()},
            "layer_change": proposal.layer_change,
            "top_samples": [
                {
                    "sample_id": batch.samples[i].sample_id,
                    "reward": batch.rewards[i],
                    "advantage": round(proposal.advantages[i], 6),
                }
                for i in ranked
            ],
            "checks": checks_payload(results),
            "thresholds": thresholds_of(policy),
        }

    @property
    def applied(self) -> int:
        """Updates this Guard made live (by the gate or by reviewers)."""
        return self.settlement.applied

    @property
    def review(self) -> ReviewDesk | None:
        return self.settlement.review

    @review.setter
    def review(self, desk: ReviewDesk | None) -> None:
        self.settlement.review = desk

    def note_checkpoint(self, model_sha256: str) -> None:
        """Weights already in a checkpoint (saved by the caller, e.g. the run's start)."""
        self.settlement.note_checkpoint(model_sha256)

    def save_checkpoint(self, reason: str) -> str:
        """Store live weights and optimizer state; record it; return the checkpoint id."""
        return self.settlement.save_checkpoint(reason)

    def apply_reviewed(self, queued: QueuedProposal, record_approval: Callable[[], None]) -> None:
        """Install a proposal people approved (see `Settlement.apply_reviewed`)."""
        self.settlement.apply_reviewed(queued, record_approval)

    @staticmethod
    def _validated_ratings(ratings: dict[str, float], shown: Sequence[Sample]) -> dict[str, float]:
        shown_ids = {s.sample_id for s in shown}
        for sample_id, value in ratings.items():
            if sample_id not in shown_ids:
                raise InputError(
                    "feedback for an output that was never shown",
                    field="sample_id",
                    got=sample_id,
                    expected="ids of shown samples only",
                )
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise InputError(
                    "feedback is not a finite number",
                    field=f"rating[{sample_id}]",
                    got=value,
                    expected="a finite reward such as 0 or 1",
                )
        return {k: float(v) for k, v in ratings.items()}

    @staticmethod
    def _report(
        cycle: int,
        counts: dict[str, Any],
        decision: Decision | None,
        stats: dict[str, float],
        results: list[CheckResult],
    ) -> CycleReport:
        return CycleReport(
            cycle=cycle,
            generated=counts["generated"],
            blocked=counts["blocked"],
            redacted=counts["redacted"],
            escalated=counts["escalated"],
            shown=counts["shown"],
            rated=counts["rated"],
            liked=counts["liked"],
            refused_no_consent=counts["refused_no_consent"],
            training_samples=counts["training_samples"],
            outcome=decision.outcome if decision else None,
            stats=dict(stats),
            checks={c.name: dict(c.metrics) for c in results},
        )


def checks_payload(results: Sequence[CheckResult]) -> list[dict[str, Any]]:
    """Check results as the audit log records them."""
    return [
        {"name": c.name, "passed": c.passed, "metrics": c.metrics, "message": c.message}
        for c in results
    ]


def thresholds_of(policy: GuardPolicy) -> dict[str, Any]:
    """The policy thresholds an explanation of an update quotes."""
    return {
        "safety_filters": list(policy.safety.filters),
        "profanity_threshold": policy.safety.profanity_threshold,
        "escalate_threshold": policy.safety.escalate_threshold,
        "pii_action": policy.safety.pii_action,
        "blocked_penalty": policy.safety.blocked_penalty,
        "max_step_kl": policy.gate.max_step_kl,
        "reject_step_kl": policy.gate.reject_step_kl,
        "max_param_change": policy.gate.max_param_change,
        "min_group_size": policy.fairness.min_group_size,
        "max_group_share": policy.fairness.max_group_share,
        "max_reward_gap": policy.fairness.max_reward_gap,
        "bias_on_fail": policy.fairness.on_fail,
    }


def run_check(check: UpdateCheck, proposal: UpdateProposal, batch: Batch) -> CheckResult:
    """A check that raises is a failed check (fail closed), not a crash and not a pass."""
    name = getattr(check, "name", getattr(check, "__name__", type(check).__name__))
    try:
        result = check(proposal, batch)
    except Exception as exc:
        return CheckResult(str(name), passed=False, message=f"check raised {type(exc).__name__}")
    if not isinstance(result, CheckResult):
        return CheckResult(str(name), passed=False, message="check returned no CheckResult")
    return result


def _batch_of(cycle: int, samples: Sequence[Sample], accepted: Sequence[Feedback]) -> Batch:
    """Consented feedback joined with its samples; requests with < 2 rewards drop out."""
    reward_of = {f.sample_id: f for f in accepted}
    per_request: dict[str, list[Sample]] = {}
    for s in samples:
        if s.sample_id in reward_of:
            per_request.setdefault(request_key(s), []).append(s)
    kept = [s for group in per_request.values() if len(group) >= 2 for s in group]
    return Batch(
        cycle=cycle,
        samples=tuple(kept),
        rewards=tuple(reward_of[s.sample_id].reward for s in kept),
        group_keys=tuple(request_key(s) for s in kept),
        feedback=tuple(reward_of[s.sample_id] for s in kept),
    )


def request_key(sample: Sample) -> str:
    """Samples of one request share the id up to the last `-k` part (`c3-r5-k1` → `c3-r5`)."""
    return sample.sample_id.rsplit("-k", 1)[0]

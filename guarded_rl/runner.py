"""`guarded-rl run`: guarded cycles of a causal LM on a feed, written to a run directory.

Run directory (everything one run owns):
    run.toml         resolved run config and guard policy
    audit.jsonl      hash-chained audit log
    checkpoints/     content-addressed weights (<sha256>.safetensors)
    feedback.sqlite  consent ledger and consented feedback
    summary.json     machine-readable outcome
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from guarded_rl.approval.gate import KLGate
from guarded_rl.approval.probe_kl import ProbeKLCheck
from guarded_rl.audit.checkpoints import CheckpointStore
from guarded_rl.audit.log import AuditLog, canonical_json
from guarded_rl.consent.store import SQLiteConsentStore
from guarded_rl.errors import InputError
from guarded_rl.fairness.feedback_check import feedback_by_group
from guarded_rl.guard import CycleReport, FeedbackSource, Guard
from guarded_rl.learn.causal_lm import load_causal_lm, probe_kl
from guarded_rl.learn.lm_generator import LMGenerator
from guarded_rl.learn.lm_learner import CausalLMLearner
from guarded_rl.policy import GuardPolicy
from guarded_rl.records import Batch, CheckResult, Request, UpdateProposal
from guarded_rl.safety.screen import screen_from_policy
from guarded_rl.weights import state_of


class RunConfig(BaseModel):
    """Settings of one run (the policy says what is enforced; this says what is run)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cycles: int = Field(40, ge=1, le=100_000, description="Generate → update cycles to run.")
    seed: int = Field(0, ge=0, description="Seeds sampling, users and every cycle.")
    model: str | None = Field(None, description="Local directory or hub id; None = embedded.")
    run_dir: str = Field(..., min_length=1)
    users_per_cycle: int = Field(24, ge=1, le=10_000, description="Readers per cycle.")
    population: int = Field(200, ge=1, le=1_000_000, description="Simulated readers.")
    prompt: str = Field("", description="Feed prompt; empty lets the model pick the topic.")
    interactive: bool = Field(False, description="The person at the terminal rates the items.")


class StopRun(Exception):
    """Raised by a feedback source to end the run after the current cycle's records."""


def cycle_seed(seed: int, cycle: int) -> int:
    """Each cycle has its own seed, so any cycle can be replayed on its own."""
    return (seed * 1_000_003 + cycle) % (2**63)


def prepare_run_dir(run_dir: Path) -> None:
    """Refuse to mix two runs in one folder."""
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise InputError(
            "run directory is not empty",
            field="--run-dir",
            got=str(run_dir),
            expected="a new or empty directory",
        )


def run(
    config: RunConfig,
    policy: GuardPolicy,
    *,
    feedback_source: FeedbackSource | None = None,
    requests_for: Callable[[int], Sequence[Request]] | None = None,
    consenting_subjects: Sequence[str] = (),
    on_cycle: Callable[[CycleReport], None] | None = None,
) -> dict[str, Any]:
    """Run the guarded cycles; return (and write) the summary.

    Without `feedback_source` the seeded simulated population rates the feed.
    """
    run_dir = Path(config.run_dir)
    prepare_run_dir(run_dir)
    model, tokenizer = load_causal_lm(config.model)  # bad --model fails before any write
    if feedback_source is None or requests_for is None:
        from guarded_rl.demo.users import Population, SimulatedFeedback

        population = Population(config.population, seed=config.seed, purpose=policy.consent.purpose)
        sim = SimulatedFeedback(population, seed=config.seed)
        feedback_source = feedback_source or sim
        consenting_subjects = sim.consented_subjects(policy.consent.purpose)

        def requests_for(cycle: int) -> Sequence[Request]:
            return population.requests(cycle, config.users_per_cycle, config.prompt)

    started = time.time()
    torch.manual_seed(config.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(run_dir / "run.toml", _run_toml(config, policy))
    consent = SQLiteConsentStore(run_dir / "feedback.sqlite")
    for subject in consenting_subjects:
        consent.grant(subject, policy.consent.purpose)

    audit = AuditLog(run_dir / "audit.jsonl")
    reference = copy.deepcopy(model).eval()
    guard = build_guard(
        model, tokenizer, policy, run_dir, feedback_source, consent, audit, reference=reference
    )
    base_sha = guard.checkpoint_live()
    audit.append("run_start", _run_start(config, policy, base_sha))

    reports: list[CycleReport] = []
    outcome = "completed"
    try:
        for cycle in range(config.cycles):
            requests = requests_for(cycle)
            report = guard.run_cycle(cycle, requests, rng_seed=cycle_seed(config.seed, cycle))
            reports.append(report)
            if on_cycle is not None:
                on_cycle(report)
    except StopRun:
        outcome = "stopped"
    except BaseException:
        outcome = "failed"  # still close the log and write what was done, then re-raise
        raise
    finally:
        final_sha = guard.checkpoint_live()
        summary = build_summary(config, reports, final_sha, time.time() - started)
        summary["outcome"] = outcome
        summary["stopped_early"] = outcome != "completed"
        summary["kl_to_reference"] = round(
            probe_kl(model, reference, tokenizer, policy.gate.probe_texts), 6
        )
        audit.append(
            "run_end",
            {
                "outcome": outcome,
                "cycles_completed": len(reports),
                "live_sha256": final_sha,
                "updates": summary["updates"],
            },
        )
        summary["audit_head"] = audit.head
        audit.close()
        consent.close()
        _write_atomic(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def build_guard(
    model: torch.nn.Module,
    tokenizer: object,
    policy: GuardPolicy,
    run_dir: Path,
    feedback_source: FeedbackSource,
    consent: SQLiteConsentStore,
    audit: AuditLog,
    *,
    reference: torch.nn.Module | None = None,
) -> Guard:
    """The default Guard for a causal LM: every stage's default implementation, wired.

    `reference` is the frozen model the KL penalty and drift checks compare against
    (a copy of `model` as it is now, by default).
    """
    reference = reference if reference is not None else copy.deepcopy(model).eval()
    learner = CausalLMLearner(model, tokenizer, policy.learner, reference=reference)
    return Guard(
        policy=policy,
        generator=LMGenerator(model, tokenizer, policy.learner),
        screen=screen_from_policy(policy.safety),
        feedback_source=feedback_source,
        consent=consent,
        learner=learner,
        checks=[
            ProbeKLCheck(model, tokenizer, policy.gate.probe_texts, reference=reference),
            _fairness_check(policy.fairness.min_group_size),
        ],
        gate=KLGate(policy.gate),
        audit=audit,
        checkpoints=CheckpointStore(run_dir / "checkpoints"),
        current_state=lambda: state_of(model),
    )


def _fairness_check(min_group_size: int) -> Callable[[UpdateProposal, Batch], CheckResult]:
    def feedback_fairness(proposal: UpdateProposal, batch: Batch) -> CheckResult:
        return feedback_by_group(batch.feedback, min_group_size=min_group_size)

    return feedback_fairness


def window(n_cycles: int) -> int:
    """Cycles compared at the start and end of a run (5, or fewer for short runs)."""
    return max(1, min(5, n_cycles // 2))


def build_summary(
    config: RunConfig, reports: Sequence[CycleReport], live_sha256: str, seconds: float
) -> dict[str, Any]:
    outcomes = Counter(r.outcome for r in reports)
    w = window(len(reports))

    def pooled(attr_num: str, attr_den: str, part: Sequence[CycleReport]) -> float | None:
        den = sum(getattr(r, attr_den) for r in part)
        return round(sum(getattr(r, attr_num) for r in part) / den, 4) if den else None

    first, last = reports[:w], reports[-w:] if reports else []
    return {
        "cycles": len(reports),
        "seed": config.seed,
        "model": config.model or "embedded:default",
        "like_rate_by_cycle": [_round(r.like_rate) for r in reports],
        "generated_by_cycle": [r.generated for r in reports],
        "blocked_by_cycle": [r.blocked for r in reports],
        "shown_by_cycle": [r.shown for r in reports],
        "rated_by_cycle": [r.rated for r in reports],
        "liked_by_cycle": [r.liked for r in reports],
        "outcome_by_cycle": [r.outcome for r in reports],
        "kl_ref_by_cycle": [r.checks.get("probe_kl", {}).get("kl_ref") for r in reports],
        "updates": {
            "applied": outcomes.get("approved", 0),
            "pending": outcomes.get("pending", 0),
            "rejected": outcomes.get("rejected", 0),
            "none_proposed": outcomes.get(None, 0),
        },
        "window": w,
        "like_rate_first": pooled("liked", "rated", first),
        "like_rate_last": pooled("liked", "rated", last),
        "blocked_share_first": pooled("blocked", "generated", first),
        "blocked_share_last": pooled("blocked", "generated", last),
        "live_sha256": live_sha256,
        "seconds": round(seconds, 1),
    }


def _round(value: float) -> float | None:
    return None if value != value else round(value, 4)


def _run_toml(config: RunConfig, policy: GuardPolicy) -> str:
    import tomli_w

    run = {k: v for k, v in config.model_dump().items() if v is not None}
    return tomli_w.dumps({"run": run, "policy": policy.model_dump()})


def policy_sha256(policy: GuardPolicy) -> str:
    return hashlib.sha256(canonical_json(policy.model_dump()).encode()).hexdigest()


def _run_start(config: RunConfig, policy: GuardPolicy, base_sha: str) -> dict[str, Any]:
    import transformers

    return {
        "config": config.model_dump(),
        "policy": policy.model_dump(),
        "policy_sha256": policy_sha256(policy),
        "base_sha256": base_sha,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "torch_threads": torch.get_num_threads(),
    }


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

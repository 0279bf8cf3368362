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
import platform
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guarded_rl.approval.gate import PolicyGate
from guarded_rl.approval.live import OnWaiting, attach_review, settle, wait_for_review
from guarded_rl.approval.probe_kl import ProbeKLCheck
from guarded_rl.approval.queue import (
    ReviewDesk,
    operator_identity,
    operator_record,
    operators_of,
)
from guarded_rl.approval.reviewers import Registry, load_registry
from guarded_rl.atomic import atomic_write
from guarded_rl.audit.appendable import run_signing_key
from guarded_rl.audit.checkpoints import CheckpointStore
from guarded_rl.audit.events import SCHEMA_VERSION
from guarded_rl.audit.head import (
    generate_signing_key,
    key_id,
    public_key_pem,
    write_public_key,
)
from guarded_rl.audit.history import RunHistory, StateRebuilder
from guarded_rl.audit.log import LOG_FILE, AuditLog, canonical_json
from guarded_rl.audit.run_lock import run_lock
from guarded_rl.audit.signer import (
    HEAD_FILE,
    PUBLIC_KEY_FILE,
    HeadSigner,
    new_default_key_file,
    origin_of,
    recorded_store_key_file,
)
from guarded_rl.consent.replay_store import ReplayStore
from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
from guarded_rl.consent.store import consent_text_sha256
from guarded_rl.consent.store_key import create_store_key, store_key_path
from guarded_rl.errors import EXIT_INTERRUPTED, GuardedRLError, InputError
from guarded_rl.fairness.data_check import DataBiasCheck, WindowSource, store_window
from guarded_rl.fairness.suite_check import check_probe_suite
from guarded_rl.guard import CycleReport, FeedbackSource, Guard
from guarded_rl.learn.causal_lm import load_causal_lm, probe_kl
from guarded_rl.learn.lm_generator import LMGenerator
from guarded_rl.learn.lm_learner import CausalLMLearner
from guarded_rl.policy import GuardPolicy, parse_policy
from guarded_rl.records import Batch, CheckResult, Request, UpdateProposal
from guarded_rl.safety.code_allow import require_policy_code_allowed
from guarded_rl.safety.screen import screen_from_policy
from guarded_rl.weights import load_state

#: Builds a feedback source from the run store's id → pseudonym function.
FeedbackFactory = Callable[[Callable[[str], str]], FeedbackSource]


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


class RunInterrupted(GuardedRLError):
    """Ctrl-C stopped the run; the log is finished as "stopped" and signed, so it can resume."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, run_dir: Path, cycles_completed: int) -> None:
        self.run_dir = run_dir
        super().__init__(
            f"interrupted after {cycles_completed} cycle(s) of this session; the log is "
            f"finished as 'stopped' and signed; continue with: guarded-rl run --resume {run_dir}"
        )


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
    feedback_source: FeedbackSource | FeedbackFactory | None = None,
    requests_for: Callable[[int], Sequence[Request]] | None = None,
    consents: Mapping[str, Sequence[str]] | None = None,
    on_cycle: Callable[[CycleReport], None] | None = None,
    key_file: Path | None = None,
    operator: str | None = None,
    operator_key: Path | None = None,
    on_review: Callable[[list[str]], None] | None = None,
    on_waiting: OnWaiting | None = None,
) -> dict[str, Any]:
    """Run the guarded cycles of a new run; return (and write) the summary.

    Without `feedback_source` the seeded simulated population rates the feed. `requests_for`
    names readers by their external ids and `consents` maps those ids to the purposes they
    granted; the run pseudonymizes both through its feedback store before anything is stored,
    so shown samples name readers by pseudonym. A `feedback_source` that must know who is who
    may be given as a function: it is called once with the store's id → pseudonym function and
    returns the source.
    `operator` (default: the login name) is who starts the run: with four-eyes on, they may
    not approve its updates, and with a reviewers file they prove who they are by signing the
    start with their reviewer key `operator_key`. `on_review` hears of settled review
    decisions, `on_waiting` of a loop waiting for one.
    """
    run_dir = Path(config.run_dir)
    prepare_run_dir(run_dir)
    registry = review_registry(policy)  # a bad reviewers file fails before any write
    require_policy_code_allowed(policy.safety)  # so does code the user did not allow
    check_probe_suite(policy)  # and a probe suite that cannot be read
    operator, operator_signer = operator_identity(
        registry, operator, operator_key, four_eyes=policy.gate.four_eyes, default_name=login_name()
    )
    key_file = new_key_file(run_dir, key_file, field="--key-file")
    model, tokenizer = load_causal_lm(config.model)  # bad --model fails before any write
    check_prompt_fits(config.prompt, model, tokenizer, policy)  # so does a too-long --prompt
    deterministic_torch()
    torch.manual_seed(config.seed)
    store_key_file = store_key_path(key_file)
    new_key_file(run_dir, store_key_file, field="--key-file")
    run_dir.mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o700)  # personal data and the run's record: the owner's alone
    with run_lock(run_dir):  # one writer of this run's log at a time
        run = {k: v for k, v in config.model_dump().items() if v is not None}
        toml = run_toml(run, policy, key_file, store_key_file)
        atomic_write(run_dir / "run.toml", toml.encode())
        key = generate_signing_key(key_file)
        create_store_key(store_key_file)  # with the run's other secrets, outside the store
        write_public_key(run_dir / PUBLIC_KEY_FILE, key.public_key())
        run_id = uuid.uuid4().hex[:16]

        consent = SQLiteFeedbackStore(run_dir / "feedback.sqlite", key_file=store_key_file)
        feedback_source, requests_for, consents = _default_readers(
            config, consent, feedback_source, requests_for, consents
        )
        audit = AuditLog(run_dir / LOG_FILE)
        signer = HeadSigner(audit, key, origin_of(run_id), run_dir / HEAD_FILE)
        reference = copy.deepcopy(model).eval()
        guard = build_guard(
            model,
            tokenizer,
            policy,
            run_dir,
            feedback_source,
            consent,
            audit,
            reference=reference,
            signer=signer,
            replay_store=ReplayStore(run_dir / "feedback.sqlite", key_file=store_key_file),
        )
        model_state, optimizer_state = guard.learner.checkpoint_state()
        base_checkpoint = guard.checkpoints.save(model_state, optimizer_state)
        guard.note_checkpoint(guard.learner.live_sha256)
        started = _run_started(
            config, policy, guard.learner.live_sha256, base_checkpoint, run_id, key
        )
        started["operator"] = operator_record(
            origin_of(run_id), operator, registry, key=operator_signer, prev=audit.head
        )
        started["store_id"] = consent.store_id  # binds this feedback store to the run
        entry = audit.append("run_started", started)
        desk = attach_review(guard, origin=origin_of(run_id), operators=operators_of([entry]))
        audit.append(
            "checkpoint_saved",
            {
                "checkpoint_id": base_checkpoint,
                "model_sha256": guard.learner.live_sha256,
                "with_optimizer": True,
                "reason": "start",
            },
        )
        record_grants(consent, audit, consents, policy.consent.consent_text)
        purge_expired(consent, audit, policy)
        signer.sign()
        return _drive(
            guard,
            config,
            policy,
            range(config.cycles),
            requests_for,
            on_cycle,
            reference,
            tokenizer,
            model,
            signer,
            consent,
            Reviewing(desk, on_review, on_waiting),
        )


def resume(
    run_dir: Path,
    *,
    cycles: int | None = None,
    key_file: Path | None = None,
    on_cycle: Callable[[CycleReport], None] | None = None,
    operator: str | None = None,
    operator_key: Path | None = None,
    on_review: Callable[[list[str]], None] | None = None,
    on_waiting: OnWaiting | None = None,
) -> dict[str, Any]:
    """Continue a run from its live weights (after its last update, reviewed update or
    rollback), with its review queue as the log left it."""
    with run_lock(run_dir):  # fails at once if the run is live elsewhere
        opened = open_run(run_dir, key_file=key_file)
        config, policy = opened.config, opened.policy
        # the policy comes from the run's log: its code needs the user's allowance as well
        require_policy_code_allowed(policy.safety, file=f"{opened.run_dir / LOG_FILE}:run_started")
        registry = review_registry(policy)
        operator, operator_signer = operator_identity(
            registry,
            operator,
            operator_key,
            four_eyes=policy.gate.four_eyes,
            default_name=login_name(),
        )
        live = opened.history.live_sha256()
        state, optimizer = opened.rebuilder.state_for(live)
        opened.learner.restore(state, optimizer)
        consent = SQLiteFeedbackStore(
            opened.run_dir / "feedback.sqlite", key_file=recorded_store_key_file(opened.run_dir)
        )
        feedback_source, requests_for, _ = _default_readers(config, consent, None, None, None)
        signer = HeadSigner.for_run(opened.run_dir, opened.key, opened.history.started["run_id"])
        audit = signer.log
        guard = build_guard(
            opened.model,
            opened.tokenizer,
            policy,
            opened.run_dir,
            feedback_source,
            consent,
            audit,
            reference=opened.reference,
            signer=signer,
            learner=opened.learner,
            replay_store=opened.replay_store,
            proposed_before=len(opened.history.proposals),
            checkpointed=tuple(opened.history.checkpoints),
        )
        first = opened.history.last_cycle() + 1
        n = cycles if cycles is not None else config.cycles
        origin = origin_of(opened.history.started["run_id"])
        resumed = {
            "from_cycle": first,
            "cycles": n,
            "live_sha256": live,
            "versions": runtime_versions(),
            "operator": operator_record(
                origin, operator, registry, key=operator_signer, kind="run_resumed", prev=audit.head
            ),
        }
        entry = audit.append("run_resumed", resumed)
        desk = attach_review(
            guard,
            origin=origin,
            operators=operators_of([*opened.history.entries, entry]),
            entries=opened.history.entries,
        )
        purge_expired(consent, audit, policy)
        signer.sign()
        summary = _drive(
            guard,
            config,
            policy,
            range(first, first + n),
            requests_for,
            on_cycle,
            opened.reference,
            opened.tokenizer,
            opened.model,
            signer,
            consent,
            Reviewing(desk, on_review, on_waiting),
        )
        return summary


def _drive(
    guard: Guard,
    config: RunConfig,
    policy: GuardPolicy,
    cycles: range,
    requests_for: Callable[[int], Sequence[Request]],
    on_cycle: Callable[[CycleReport], None] | None,
    reference: torch.nn.Module,
    tokenizer: object,
    model: torch.nn.Module,
    signer: HeadSigner,
    consent: SQLiteFeedbackStore,
    reviewing: Reviewing,
) -> dict[str, Any]:
    """Run the cycles; whatever happens, checkpoint, finish the log, sign, write the summary.

    Before each cycle the review queue is settled; with `gate.on_pending = "wait"` the loop
    waits there while a proposal is pending, and stops when `wait_timeout_seconds` pass.
    """
    started = time.time()
    run_dir = Path(config.run_dir)
    reports: list[CycleReport] = []
    outcome = "completed"
    interrupted = False
    try:
        for cycle in cycles:
            if not reviewing.settle_before_cycle(run_dir, policy, signer):
                outcome = "review_timeout"
                break
            report = guard.run_cycle(
                cycle, requests_for(cycle), rng_seed=cycle_seed(config.seed, cycle)
            )
            reports.append(report)
            if on_cycle is not None:
                on_cycle(report)
    except StopRun:
        outcome = "stopped"
    except KeyboardInterrupt:
        # Ctrl-C is the user stopping the run, not a failure: finish the log as "stopped" and
        # tell them how to continue (below, once the log is signed and the summary written).
        outcome = "stopped"
        interrupted = True
    except BaseException:
        outcome = "failed"  # still close the log and write what was done, then re-raise
        raise
    finally:
        if outcome == "completed":
            reviewing.settle(run_dir, signer)  # decisions that came in during the last cycle
        guard.save_checkpoint("final")
        summary = build_summary(config, reports, guard.learner.live_sha256, time.time() - started)
        summary["review"] = reviewing.summary()
        summary["updates"]["applied_after_review"] = summary["review"]["applied_here"]
        summary["first_cycle"] = cycles.start
        summary["outcome"] = outcome
        summary["stopped_early"] = outcome != "completed"
        summary["kl_to_reference"] = round(
            probe_kl(model, reference, tokenizer, policy.gate.probe_texts), 6
        )
        signer.log.append(
            "run_finished",
            {
                "outcome": outcome,
                "cycles_completed": len(reports),
                "live_sha256": guard.learner.live_sha256,
                "updates": summary["updates"],
            },
        )
        head = signer.sign()
        summary["audit_head"] = signer.log.head
        summary["signed_tree_size"] = head.tree_size
        signer.log.close()
        consent.close()
        if guard.replay_store is not None:
            guard.replay_store.close()
        atomic_write(run_dir / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    if interrupted:
        raise RunInterrupted(run_dir, len(reports))
    return summary


@dataclass
class Reviewing:
    """The review queue of a running loop and who hears about it."""

    desk: ReviewDesk
    on_review: Callable[[list[str]], None] | None = None
    on_waiting: OnWaiting | None = None
    applied_here: int = 0

    def settle(self, run_dir: Path, signer: HeadSigner) -> None:
        self._report(settle(self.desk, run_dir), signer)

    def settle_before_cycle(self, run_dir: Path, policy: GuardPolicy, signer: HeadSigner) -> bool:
        """Settle; in wait mode wait while anything is pending. False: waited in vain."""
        self.settle(run_dir, signer)
        if policy.gate.on_pending != "wait" or not self.desk.pending:
            return True
        return wait_for_review(
            self.desk,
            run_dir,
            timeout=policy.gate.wait_timeout_seconds,
            on_settled=lambda lines: self._report(lines, signer),
            on_waiting=self.on_waiting,
        )

    def _report(self, lines: list[str], signer: HeadSigner) -> None:
        if not lines:
            return
        signer.sign()  # decisions are on the signed record before the next cycle starts
        self.applied_here += sum(1 for line in lines if line.endswith(": applied"))
        if self.on_review is not None:
            self.on_review(lines)

    def summary(self) -> dict[str, Any]:
        queue = self.desk.queue.values()
        by_status: dict[str, int] = {}
        for p in queue:
            by_status[p.status] = by_status.get(p.status, 0) + 1
        return {
            "pending": [p.proposal_id for p in queue if p.status == "pending"],
            "by_status": by_status,
            "applied_here": self.applied_here,
        }


def review_registry(policy: GuardPolicy) -> Registry | None:
    """The policy's reviewers file, checked; refuses a policy nobody could ever satisfy."""
    gate = policy.gate
    if gate.reviewers is None:
        if gate.human_review == "always":
            raise InputError(
                "the policy sends every update to human review but names no reviewers",
                field="gate.reviewers",
                expected="a reviewers file (in the policy, or `run --reviewers FILE`)",
            )
        return None
    registry = load_registry(gate.reviewers)
    allowed = [r for r in registry.reviewers if r.role in gate.reviewer_roles]
    if len(allowed) < gate.approvals_required:
        raise InputError(
            f"the reviewers file has {len(allowed)} reviewer(s) with a role of "
            f"{gate.reviewer_roles}, fewer than the {gate.approvals_required} approvals required",
            file=str(registry.path),
            field="gate.approvals_required",
            got=gate.approvals_required,
            expected=f"at most {len(allowed)}, or more reviewers",
        )
    return registry


def login_name() -> str:
    """Who runs this process (the default operator)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _default_readers(
    config: RunConfig,
    store: SQLiteFeedbackStore,
    feedback_source: Any,
    requests_for: Callable[[int], Sequence[Request]] | None,
    consents: Mapping[str, Sequence[str]] | None,
) -> tuple[FeedbackSource, Callable[[int], Sequence[Request]], Mapping[str, Sequence[str]]]:
    """The seeded simulated readers, unless a feedback source and requests were given; the
    requests come back naming readers by pseudonym."""
    if feedback_source is not None and not hasattr(feedback_source, "rate"):
        feedback_source = feedback_source(store.pseudonym)
    if feedback_source is None or requests_for is None:
        from guarded_rl.demo.users import Population, SimulatedFeedback

        population = Population(config.population, seed=config.seed)
        feedback_source = SimulatedFeedback(population, seed=config.seed, pseudonym=store.pseudonym)

        def population_requests(cycle: int) -> Sequence[Request]:
            return population.requests(cycle, config.users_per_cycle, config.prompt)

        requests_for, consents = population_requests, population.consents()
    by_id = requests_for

    def pseudonymous_requests(cycle: int) -> Sequence[Request]:
        return [replace(r, subject=store.pseudonym(r.subject)) for r in by_id(cycle)]

    return feedback_source, pseudonymous_requests, consents or {}


def record_grants(
    store: SQLiteFeedbackStore,
    audit: AuditLog,
    consents: Mapping[str, Sequence[str]],
    consent_text: str,
) -> list[str]:
    """Grant each reader's purposes; one `consent_granted` entry per reader (pseudonym only)."""
    text_sha256 = consent_text_sha256(consent_text)
    subjects = []
    for user_id, purposes in consents.items():
        subject = store.grant(user_id, purposes, text_sha256=text_sha256)
        audit.append(
            "consent_granted",
            {"subject": subject, "purposes": sorted(purposes), "consent_text_sha256": text_sha256},
        )
        subjects.append(subject)
    return subjects


def purge_expired(store: SQLiteFeedbackStore, audit: AuditLog, policy: GuardPolicy) -> int:
    """Retention: delete feedback older than the policy allows, and record that it happened."""
    days = policy.consent.retention_days
    if days is None:
        return 0
    removed = store.purge_expired(days)
    audit.append("retention_purge", {"retention_days": days, "feedback_rows": removed})
    return removed


def deterministic_torch() -> None:
    """Bit-exact replay on CPU needs deterministic kernels."""
    torch.use_deterministic_algorithms(True, warn_only=True)


@dataclass
class OpenRun:
    """An existing run, loaded for resume, replay or rollback."""

    run_dir: Path
    config: RunConfig
    policy: GuardPolicy
    history: RunHistory
    model: torch.nn.Module
    tokenizer: object
    reference: torch.nn.Module
    learner: CausalLMLearner
    checkpoints: CheckpointStore
    replay_store: ReplayStore
    rebuilder: StateRebuilder
    key: Any  # the signing key (None when not needed)


def open_run(
    run_dir: str | Path,
    *,
    key_file: Path | None = None,
    need_key: bool = True,
    while_written: bool = False,
) -> OpenRun:
    """Load a run's settings, verified history, model, reference and stores
    (`while_written`: read-only use of a run that may be live)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError("no such run directory", field="RUN_DIR", got=str(run_dir))
    history = RunHistory.load(run_dir, while_written=while_written)
    # settings come from the signed log, not from run.toml (a readable copy anyone can edit)
    source = f"{run_dir / LOG_FILE}:run_started"
    try:
        config = RunConfig.model_validate(history.started["config"])
    except (ValidationError, KeyError):
        raise InputError("run_started entry lacks a valid run config", file=source) from None
    # a moved or copied run works in the directory opened, never where it was first written
    config = config.model_copy(update={"run_dir": str(run_dir)})
    policy = parse_policy(history.started.get("policy", {}), source=source)
    key = None
    if need_key:
        key = run_signing_key(run_dir, key_file)  # proves the log and that the key is its own
    model, tokenizer = load_causal_lm(config.model)
    checkpoints = CheckpointStore(run_dir / "checkpoints")
    reference = copy.deepcopy(model).eval()
    load_state(reference, checkpoints.load_model(history.started["base_checkpoint_id"]))
    threads = history.started.get("torch_threads")
    if isinstance(threads, int) and threads > 0:
        torch.set_num_threads(threads)
    deterministic_torch()
    learner = CausalLMLearner(model, tokenizer, policy.learner, reference=reference)
    replay_store = ReplayStore(
        run_dir / "feedback.sqlite", key_file=recorded_store_key_file(run_dir)
    )
    rebuilder = StateRebuilder(history, learner, checkpoints, replay_store, learner.propose)
    return OpenRun(
        run_dir,
        config,
        policy,
        history,
        model,
        tokenizer,
        reference,
        learner,
        checkpoints,
        replay_store,
        rebuilder,
        key,
    )


def build_guard(
    model: torch.nn.Module,
    tokenizer: object,
    policy: GuardPolicy,
    run_dir: Path,
    feedback_source: FeedbackSource,
    consent: SQLiteFeedbackStore,
    audit: AuditLog,
    *,
    reference: torch.nn.Module | None = None,
    signer: HeadSigner | None = None,
    learner: CausalLMLearner | None = None,
    replay_store: ReplayStore | None = None,
    proposed_before: int = 0,
    checkpointed: Sequence[str] = (),
) -> Guard:
    """The default Guard for a causal LM: every stage's default implementation, wired.

    `reference` is the frozen model the KL penalty and drift checks compare against
    (a copy of `model` as it is now, by default).
    """
    reference = reference if reference is not None else copy.deepcopy(model).eval()
    if learner is None:
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
            *bias_checks(
                model, tokenizer, policy, window=store_window(consent, policy.consent.purpose)
            ),
        ],
        gate=PolicyGate(
            policy.gate, blocking_checks=blocking_checks(policy), proposed_before=proposed_before
        ),
        audit=audit,
        checkpoints=CheckpointStore(run_dir / "checkpoints"),
        replay_store=replay_store or ReplayStore(run_dir / "feedback.sqlite"),
        on_update_recorded=signer.sign if signer is not None else None,
        checkpointed=checkpointed,
    )


def check_prompt_fits(prompt: str, model: Any, tokenizer: Any, policy: GuardPolicy) -> None:
    """Refuse a prompt that leaves the model no room to write (it would fail mid-cycle)."""
    config = getattr(model, "config", None)
    context = getattr(config, "n_positions", None) or getattr(
        config, "max_position_embeddings", None
    )
    if not prompt or not isinstance(context, int):
        return
    room = context - policy.learner.max_new_tokens
    used = len(tokenizer(prompt)["input_ids"])
    if used > room:
        raise InputError(
            f"too long for the model: {used} tokens",
            field="--prompt",
            got=prompt,
            expected=f"at most {max(room, 0)} tokens (context {context} minus "
            f"{policy.learner.max_new_tokens} new tokens)",
        )


def bias_checks(
    model: torch.nn.Module,
    tokenizer: object,
    policy: GuardPolicy,
    *,
    window: WindowSource | None = None,
) -> list[Callable[[UpdateProposal, Batch], CheckResult]]:
    """The data check on every update's feedback (and, with `window`, on the pooled ratings of
    the last `fairness.window_updates` updates), and the output probes every Nth update."""
    fairness = policy.fairness
    checks: list[Callable[[UpdateProposal, Batch], CheckResult]] = [
        DataBiasCheck(
            max_group_share=fairness.max_group_share,
            max_reward_gap=fairness.max_reward_gap,
            min_group_size=fairness.min_group_size,
            on_fail=fairness.on_fail,
            window_updates=fairness.window_updates,
            window=window,
        )
    ]
    if fairness.probe_every > 0:
        from guarded_rl.fairness.probes import OutputBiasCheck, default_suite, load_suite

        suite = load_suite(fairness.probe_suite) if fairness.probe_suite else default_suite()
        checks.append(
            OutputBiasCheck(
                model,
                tokenizer,
                suite,
                max_gap={
                    "toxicity": fairness.max_toxicity_gap,
                    "sentiment": fairness.max_sentiment_gap,
                },
                max_gap_increase={
                    "toxicity": fairness.max_toxicity_gap_increase,
                    "sentiment": fairness.max_sentiment_gap_increase,
                },
                every=fairness.probe_every,
            )
        )
    return checks


def blocking_checks(policy: GuardPolicy) -> tuple[str, ...]:
    """The checks whose failure rejects an update rather than holding it for review."""
    return ("bias_data", "bias_output") if policy.fairness.on_fail == "block" else ()


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
        "redacted_by_cycle": [r.redacted for r in reports],
        "escalated_by_cycle": [r.escalated for r in reports],
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


def new_key_file(run_dir: Path, key_file: str | Path | None, *, field: str) -> Path:
    """Where a new run's signing key goes (default: a new file in the user's key directory,
    `signer.new_default_key_file`); never over an existing key. Recorded absolute in run.toml
    so other commands find it from any folder."""
    path = Path(key_file) if key_file is not None else new_default_key_file(run_dir)
    path = path.absolute()
    if path.exists():
        raise InputError(
            "signing key file already exists (one key per run)",
            field=field,
            got=str(path),
            expected="a path where a new key can be created",
        )
    return path


def run_toml(
    run: dict[str, Any], policy: GuardPolicy, key_file: Path, store_key_file: Path | None = None
) -> str:
    """`run.toml`: a readable copy of the run settings and policy (the signed copy is in the
    log's `run_started`) and where the run's secrets are (signing key, store key)."""
    import tomli_w

    run = {**run, "key_file": str(key_file)}
    if store_key_file is not None:
        run["store_key_file"] = str(store_key_file)
    return tomli_w.dumps(_without_none({"run": run, "policy": policy.model_dump()}))


def _without_none(value: Any) -> Any:
    """TOML has no null: an unset optional setting is simply left out."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def policy_sha256(policy: GuardPolicy) -> str:
    return hashlib.sha256(canonical_json(policy.model_dump()).encode()).hexdigest()


def runtime_versions() -> dict[str, Any]:
    import transformers

    import guarded_rl

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "guarded_rl": guarded_rl.__version__,
        "code": _code_version(),
        "torch_threads": torch.get_num_threads(),
        "device": "cpu",
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }


def _code_version() -> str:
    """The git commit of the package source when it runs from a checkout, else 'release'."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "release"
    return out.stdout.strip() if out.returncode == 0 else "release"


def _run_started(
    config: RunConfig,
    policy: GuardPolicy,
    base_sha: str,
    base_checkpoint: str,
    run_id: str,
    key: Any,
) -> dict[str, Any]:
    public = key.public_key()
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "config": config.model_dump(),
        "policy": policy.model_dump(),
        "policy_sha256": policy_sha256(policy),
        "seed": config.seed,
        "base_sha256": base_sha,
        "base_checkpoint_id": base_checkpoint,
        "versions": runtime_versions(),
        "torch_threads": torch.get_num_threads(),
        "public_key": public_key_pem(public),
        "key_id": key_id(public),
    }

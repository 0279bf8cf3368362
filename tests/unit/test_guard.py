"""The Guard: one real guarded cycle on the tiny GPT-2, stage by stage."""

from __future__ import annotations

import copy
import dataclasses
import math
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from guarded_rl.approval.gate import PolicyGate
from guarded_rl.approval.probe_kl import ProbeKLCheck
from guarded_rl.audit.checkpoints import CheckpointStore
from guarded_rl.audit.commitments import batch_commitment
from guarded_rl.audit.log import AuditEntry, AuditLog, read_log
from guarded_rl.consent.replay_store import ReplayInputsErased, ReplayStore
from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
from guarded_rl.errors import AuditError, InputError
from guarded_rl.fairness.data_check import DataBiasCheck
from guarded_rl.guard import CycleReport, Guard, _batch_of, request_key
from guarded_rl.learn.lm_generator import LMGenerator
from guarded_rl.learn.lm_learner import CausalLMLearner
from guarded_rl.policy import AuditPolicy, GatePolicy, GuardPolicy, LearnerPolicy
from guarded_rl.records import Batch, CheckResult, Feedback, Request, Sample, UpdateProposal
from guarded_rl.safety.screen import FilterScreen
from guarded_rl.weights import module_sha256, state_of, state_sha256, tensor_sha256

PURPOSE = "training"
BLOCK_CHAR = "e"  # the prompt "sports:" has none, so only completions decide
PROBES = ["sports: Team wins", "health: New clinic"]
REQUESTS = [
    Request("u-alice-7f3a", "A", "sports:"),
    Request("u-bob-91c2", "B", "sports:"),
    Request("u-carol-55d0", "A", "sports:"),  # never consents
]
CONSENTING = ("u-alice-7f3a", "u-bob-91c2")
SEED = 6  # a seed under which some samples are blocked and some shown (checked in the tests)
APPROVED = ["update_proposed", "update_approved", "update_applied"]


def block_char_filter(texts: Sequence[str]) -> list[float]:
    return [1.0 if BLOCK_CHAR in t else 0.0 for t in texts]


class RecordingFeedback:
    """A plain feedback source: likes completions whose first token id is odd."""

    def __init__(self, extra: dict[str, float] | None = None) -> None:
        self.seen: list[Sample] = []
        self.extra = extra or {}

    def rate(self, shown: Sequence[Sample]) -> dict[str, float]:
        self.seen.extend(shown)
        ratings = {s.sample_id: float(s.completion_ids[0] % 2) for s in shown}
        ratings.update(self.extra)
        return ratings


@dataclass
class BatchSpy:
    """A check that keeps the batch and proposal it was given (and passes)."""

    name: str = "batch_spy"
    batches: list[Batch] = field(default_factory=list)
    proposals: list[UpdateProposal] = field(default_factory=list)

    def __call__(self, proposal: UpdateProposal, batch: Batch) -> CheckResult:
        self.batches.append(batch)
        self.proposals.append(proposal)
        return CheckResult(self.name, passed=True, metrics={"n": len(batch)})


@dataclass
class SwitchableCheck:
    """Passes until told to fail (to hold one cycle's update for review)."""

    name: str = "switchable"
    fail: bool = False

    def __call__(self, proposal: UpdateProposal, batch: Batch) -> CheckResult:
        return CheckResult(self.name, passed=not self.fail)


def exploding_check(proposal: UpdateProposal, batch: Batch) -> CheckResult:
    raise RuntimeError("metric backend down")


@dataclass
class Rig:
    guard: Guard
    model: nn.Module
    learner: CausalLMLearner
    feedback: RecordingFeedback
    spy: BatchSpy
    audit_path: Path
    consent_path: Path
    consent: SQLiteFeedbackStore
    checkpoints: CheckpointStore
    replay_store: ReplayStore | None
    #: for every `on_update_recorded` call: the entry types in the log at that moment
    recorded: list[list[str]]

    def entries(self) -> list[AuditEntry]:
        return read_log(self.audit_path)

    def types(self) -> list[str]:
        return [e.type for e in self.entries()]

    def only(self, type_: str) -> AuditEntry:
        (entry,) = [e for e in self.entries() if e.type == type_]
        return entry


def _policy(max_kl: float = 5.0, reject_kl: float = 10.0, every: int = 1) -> GuardPolicy:
    return GuardPolicy(
        learner=LearnerPolicy(samples_per_prompt=4, max_new_tokens=4, learning_rate=1e-2),
        # the tiny test model's steps are large relative to its weights
        gate=GatePolicy(
            max_step_kl=max_kl, reject_step_kl=reject_kl, max_param_change=100.0, probe_texts=PROBES
        ),
        audit=AuditPolicy(checkpoint_every=every),
    )


def _rig(
    tmp_path: Path,
    lm: tuple[nn.Module, object],
    *,
    policy: GuardPolicy | None = None,
    feedback: RecordingFeedback | None = None,
    extra_checks: Sequence[Any] = (),
    consenting: Sequence[str] = CONSENTING,
    replay: bool = True,
    callback: bool = True,
    screen: Any = None,
) -> Rig:
    model, tok = lm
    policy = policy or _policy()
    consent_path = tmp_path / "feedback.sqlite"
    consent = SQLiteFeedbackStore(consent_path)
    for subject in consenting:
        consent.grant_pseudonym(
            subject, [PURPOSE, "fairness-analysis"], text_sha256="consent-text-v1"
        )
    learner = CausalLMLearner(model, tok, policy.learner)
    spy = BatchSpy()
    checks = [
        ProbeKLCheck(model, tok, policy.gate.probe_texts, reference=learner.reference),
        spy,
        *extra_checks,
    ]
    audit_path = tmp_path / "audit.jsonl"
    checkpoints = CheckpointStore(tmp_path / "checkpoints")
    # the same file as the consent store, as the runner does
    replay_store = ReplayStore(consent_path) if replay else None
    feedback = feedback or RecordingFeedback()
    recorded: list[list[str]] = []

    def on_update_recorded() -> None:
        recorded.append([e.type for e in read_log(audit_path)])

    guard = Guard(
        policy=policy,
        generator=LMGenerator(model, tok, policy.learner),
        screen=screen or FilterScreen({"block_char": (block_char_filter, 0.5)}),
        feedback_source=feedback,
        consent=consent,
        learner=learner,
        checks=checks,
        gate=PolicyGate(policy.gate),
        audit=AuditLog(audit_path),
        checkpoints=checkpoints,
        replay_store=replay_store,
        on_update_recorded=on_update_recorded if callback else None,
    )
    return Rig(
        guard,
        model,
        learner,
        feedback,
        spy,
        audit_path,
        consent_path,
        consent,
        checkpoints,
        replay_store,
        recorded,
    )


def _generated(lm: tuple[nn.Module, object], cycle: int = 0) -> list[Sample]:
    """What the rig's generator produces for REQUESTS under SEED (same model, same RNG)."""
    model, tok = lm
    torch.manual_seed(SEED)
    return LMGenerator(model, tok, _policy().learner).generate(REQUESTS, 4, cycle)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _assert_same(got: Any, want: Any) -> None:
    """Exact structural equality, tensors compared bit for bit."""
    assert type(got) is type(want), (got, want)
    if isinstance(want, torch.Tensor):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert tensor_sha256(got) == tensor_sha256(want)
    elif isinstance(want, dict):
        assert list(got) == list(want)
        for key in want:
            _assert_same(got[key], want[key])
    elif isinstance(want, list | tuple):
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            _assert_same(a, b)
    else:
        assert got == want


def _assert_state_equal(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(want)
    assert all(torch.equal(got[k], want[k]) for k in want)


def _assert_checkpoint_entries_load(rig: Rig) -> list[AuditEntry]:
    """Every `checkpoint_saved` names a checkpoint that loads to the weights it records."""
    saved = [e for e in rig.entries() if e.type == "checkpoint_saved"]
    for entry in saved:
        assert set(entry.payload) == {"checkpoint_id", "model_sha256", "with_optimizer", "reason"}
        checkpoint_id = entry.payload["checkpoint_id"]
        assert rig.checkpoints.exists(checkpoint_id)
        assert rig.checkpoints.model_sha256(checkpoint_id) == entry.payload["model_sha256"]
        state, optimizer = rig.checkpoints.load(checkpoint_id)
        assert state_sha256(state) == entry.payload["model_sha256"]
        assert entry.payload["with_optimizer"] is True
        assert optimizer is not None
        assert state_sha256(rig.checkpoints.load_model(checkpoint_id)) == state_sha256(state)
    return saved


def test_precondition_some_blocked_some_shown(fresh_lm: tuple[nn.Module, object]) -> None:
    samples = _generated(fresh_lm)
    blocked = [s for s in samples if BLOCK_CHAR in s.text]
    assert 0 < len(blocked) < len(samples)


def test_blocked_samples_never_reach_feedback(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    expected = _generated(fresh_lm)
    rig = _rig(tmp_path, fresh_lm)
    report = rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)

    blocked_ids = {s.sample_id for s in expected if BLOCK_CHAR in f"{s.prompt} {s.text}"}
    seen_ids = {s.sample_id for s in rig.feedback.seen}
    assert [s.text for s in rig.feedback.seen] == [
        s.text for s in expected if s.sample_id not in blocked_ids
    ]
    assert seen_ids.isdisjoint(blocked_ids)
    assert all(BLOCK_CHAR not in s.text for s in rig.feedback.seen)
    assert report.generated == 12
    assert report.blocked == len(blocked_ids) > 0
    assert report.shown == 12 - len(blocked_ids) == len(seen_ids)
    assert report.rated == report.shown
    assert math.isclose(report.blocked_share, len(blocked_ids) / 12)


def test_blocked_samples_train_with_the_penalty(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(tmp_path, fresh_lm)
    rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)
    (batch,) = rig.spy.batches
    penalties = [f for f in batch.feedback if f.source == "penalty"]
    assert penalties
    for fb, sample, reward in zip(batch.feedback, batch.samples, batch.rewards, strict=True):
        assert fb.sample_id == sample.sample_id
        assert fb.reward == reward
        if fb.source == "penalty":
            assert BLOCK_CHAR in sample.text
            assert reward == -1.0
        else:
            assert reward == float(sample.completion_ids[0] % 2)
    proposed = rig.only("update_proposed").payload
    assert proposed["feedback_by_source"] == {
        "person": len(batch) - len(penalties),
        "penalty": len(penalties),
    }
    assert proposed["thresholds"]["blocked_penalty"] == -1.0


def test_subjects_without_consent_contribute_nothing(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(tmp_path, fresh_lm)
    report = rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)

    (batch,) = rig.spy.batches
    assert {s.subject for s in batch.samples} == set(CONSENTING)
    assert report.training_samples == len(batch) == 8
    assert report.refused_no_consent == 4  # carol's 4 samples: rated or penalised, all refused
    assert {f.group for f in batch.feedback} == {"A", "B"}
    with sqlite3.connect(rig.consent_path) as db:
        subjects = [r[0] for r in db.execute("SELECT subject FROM feedback")]
        sealed_for = {r[0] for r in db.execute("SELECT subject FROM replay_inputs")}
    assert len(subjects) == 8
    assert "u-carol-55d0" not in subjects
    # nothing of carol's is kept for replay either
    assert sealed_for == set(CONSENTING)
    # carol was still shown her safe outputs: consent governs training, not service
    assert any(s.subject == "u-carol-55d0" for s in rig.feedback.seen)


def test_group_is_kept_only_under_fairness_consent(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(tmp_path, fresh_lm, consenting=())
    rig.consent.grant_pseudonym("u-alice-7f3a", [PURPOSE], text_sha256="consent-text-v1")
    rig.consent.grant_pseudonym(
        "u-bob-91c2", [PURPOSE, "fairness-analysis"], text_sha256="consent-text-v1"
    )
    rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)
    (batch,) = rig.spy.batches
    groups = {f.subject: f.group for f in batch.feedback}
    assert groups == {"u-alice-7f3a": "", "u-bob-91c2": "B"}
    with sqlite3.connect(rig.consent_path) as db:  # alice's rows carry no sealed fields at all
        sealed = db.execute(
            "SELECT COUNT(*) FROM feedback WHERE subject = ? AND personal IS NOT NULL",
            ("u-alice-7f3a",),
        ).fetchone()[0]
    assert sealed == 0


def test_nobody_consenting_means_no_update(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(tmp_path, fresh_lm, consenting=())
    live = rig.learner.live_sha256
    report = rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)
    assert report.outcome is None
    assert report.training_samples == 0
    assert report.refused_no_consent == 12
    assert rig.spy.batches == []
    assert rig.learner.live_sha256 == live == module_sha256(rig.model)
    rig.guard.audit.close()
    (entry,) = read_log(rig.audit_path)
    assert entry.type == "cycle_skipped"
    assert set(entry.payload) == {"cycle", "rng_seed", "counts", "live_sha256"}
    assert entry.payload["cycle"] == 0
    assert entry.payload["rng_seed"] == SEED
    assert entry.payload["live_sha256"] == live
    assert entry.payload["counts"]["refused_no_consent"] == 12
    assert entry.payload["counts"]["training_samples"] == 0
    # no update: nothing sealed for replay, no checkpoint, no head to sign
    assert rig.replay_store is not None
    with pytest.raises(AuditError) as info:
        rig.replay_store.load_batch(0)
    assert not isinstance(info.value, ReplayInputsErased)
    assert rig.checkpoints.stored_bytes() == 0
    assert rig.recorded == []


@pytest.mark.parametrize("bad", ["never-shown", "blocked", "nan"])
def test_bad_feedback_raises_input_error(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object], bad: str
) -> None:
    blocked_id = next(s.sample_id for s in _generated(fresh_lm) if BLOCK_CHAR in s.text)
    shown_id = next(s.sample_id for s in _generated(fresh_lm) if BLOCK_CHAR not in s.text)
    extra = {
        "never-shown": {"c0-r9-k9": 1.0},
        "blocked": {blocked_id: 1.0},
        "nan": {shown_id: float("nan")},
    }[bad]
    rig = _rig(tmp_path, fresh_lm, feedback=RecordingFeedback(extra))
    live = rig.learner.live_sha256
    with pytest.raises(InputError) as info:
        rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)
    assert info.value.exit_code == 2
    assert rig.learner.live_sha256 == live
    with sqlite3.connect(rig.consent_path) as db:
        assert db.execute("SELECT COUNT(*) FROM feedback").fetchone() == (0,)
        assert db.execute("SELECT COUNT(*) FROM replay_inputs").fetchone() == (0,)
    assert rig.audit_path.read_bytes() == b""
    assert rig.recorded == []


def test_raising_check_fails_and_gate_does_not_approve(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(tmp_path, fresh_lm, extra_checks=[exploding_check])
    live = rig.learner.live_sha256
    report = rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)
    assert report.outcome == "pending"
    assert rig.learner.live_sha256 == live == module_sha256(rig.model)
    assert rig.guard.applied == 0
    rig.guard.audit.close()
    # the live weights are checkpointed once, for the reviewer's comparison and the apply
    assert rig.types() == ["update_proposed", "checkpoint_saved", "update_pending"]
    proposed, base, pending = rig.entries()
    assert base.payload["reason"] == "review_base"
    assert base.payload["model_sha256"] == live
    checks = {c["name"]: c for c in proposed.payload["checks"]}
    assert checks["exploding_check"]["passed"] is False
    assert checks["exploding_check"]["message"] == "check raised RuntimeError"
    assert checks["probe_kl"]["passed"] is True
    assert pending.payload["cycle"] == 0
    assert pending.payload["rule"] == "failed_checks"
    assert pending.payload["reasons"] == ["check failed: exploding_check"]
    # the held candidate is kept for review: weights and optimizer state, under a checkpoint id
    candidate = proposed.payload["candidate_sha256"]
    assert pending.payload["candidate_sha256"] == candidate != live
    assert proposed.payload["base_sha256"] == live
    checkpoint_id = pending.payload["checkpoint_id"]
    assert rig.checkpoints.exists(checkpoint_id)
    assert rig.checkpoints.model_sha256(checkpoint_id) == candidate
    state, optimizer = rig.checkpoints.load(checkpoint_id)
    assert optimizer is not None  # applying it later must resume training exactly
    assert state_sha256(state) == candidate
    # nothing went live
    assert "update_applied" not in rig.types()


def test_check_returning_no_check_result_counts_as_failed(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    def sloppy(proposal: UpdateProposal, batch: Batch) -> dict[str, bool]:
        return {"passed": True}

    rig = _rig(tmp_path, fresh_lm, extra_checks=[sloppy])
    report = rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)
    assert report.outcome == "pending"
    checks = {c["name"]: c for c in rig.only("update_proposed").payload["checks"]}
    assert checks["sloppy"]["passed"] is False
    assert checks["sloppy"]["message"] == "check returned no CheckResult"
    assert rig.only("update_pending").payload["rule"] == "failed_checks"


def test_pending_checkpoint_holds_the_candidate_weights(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(tmp_path, fresh_lm, policy=_policy(max_kl=1e-9, reject_kl=10.0))
    live = rig.learner.live_sha256
    live_state = state_of(rig.model, clone=True)
    report = rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)
    assert report.outcome == "pending"
    (proposal,) = rig.spy.proposals
    pending = rig.only("update_pending")
    assert pending.payload["rule"] == "needs_review"
    assert set(pending.payload) == {
        "cycle",
        "rule",
        "reasons",
        "proposal_id",
        "base_sha256",
        "candidate_sha256",
        "checkpoint_id",
        "with_optimizer",
        "approvals_required",
        "expiry_hours",
    }
    assert pending.payload["proposal_id"] == "u0" and pending.payload["base_sha256"] == live
    assert pending.payload["candidate_sha256"] == proposal.candidate_sha256
    checkpoint_id = pending.payload["checkpoint_id"]
    assert rig.checkpoints.model_sha256(checkpoint_id) == proposal.candidate_sha256
    stored, optimizer = rig.checkpoints.load(checkpoint_id)
    assert optimizer is not None
    _assert_state_equal(stored, proposal.candidate_state)
    assert state_sha256(stored) == proposal.candidate_sha256 != live
    # the live model is untouched
    assert rig.learner.live_sha256 == live == module_sha256(rig.model)
    _assert_state_equal(state_of(rig.model), live_state)


def test_approved_update_goes_live_and_is_audited(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(tmp_path, fresh_lm)
    before = rig.learner.live_sha256
    report = rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)
    assert report.outcome == "approved"
    after = rig.learner.live_sha256
    assert after != before
    assert module_sha256(rig.model) == after
    assert rig.guard.applied == 1
    assert report.checks["probe_kl"]["kl_step"] > 0
    assert report.checks["batch_spy"] == {"n": 8}
    assert report.stats["samples"] == 8.0

    rig.guard.audit.close()
    assert rig.types() == [*APPROVED, "checkpoint_saved"]
    proposed, approved, applied, saved = rig.entries()
    (batch,) = rig.spy.batches
    (proposal,) = rig.spy.proposals

    data = proposed.payload
    assert data["cycle"] == 0
    assert data["rng_seed"] == SEED
    assert data["base_sha256"] == before
    assert data["candidate_sha256"] == after
    assert data["batch_sha256"] == batch_commitment(batch)
    assert data["batch_size"] == len(batch) == 8
    assert data["feedback_by_source"] == dict(Counter(f.source for f in batch.feedback))
    assert data["counts"] == {
        "generated": report.generated,
        "blocked": report.blocked,
        "redacted": 0,
        "escalated": 0,
        "by_action": {
            "allow": report.generated - report.blocked,
            "redact": 0,
            "escalate": 0,
            "block": report.blocked,
        },
        "by_backend": {"block_char": report.blocked},
        "blocked_by_reason": {"block_char": report.blocked},
        "shown": report.shown,
        "rated": report.rated,
        "liked": report.liked,
        "redacted_rewards_capped": 0,
        "refused_no_consent": report.refused_no_consent,
        "training_samples": report.training_samples,
    }
    assert data["stats"] == {k: round(v, 6) for k, v in report.stats.items()}
    assert data["layer_change"] == proposal.layer_change
    assert data["layer_change"] and all(v >= 0 for v in data["layer_change"].values())
    assert any(v > 0 for v in data["layer_change"].values())
    assert [c["name"] for c in data["checks"]] == ["probe_kl", "batch_spy"]
    assert all(c["passed"] for c in data["checks"])
    assert data["checks"][1]["metrics"] == {"n": 8}
    policy = rig.guard.policy
    assert data["thresholds"] == {
        "safety_filters": list(policy.safety.filters),
        "profanity_threshold": policy.safety.profanity_threshold,
        "escalate_threshold": policy.safety.escalate_threshold,
        "pii_action": policy.safety.pii_action,
        "blocked_penalty": policy.safety.blocked_penalty,
        "max_step_kl": 5.0,
        "reject_step_kl": 10.0,
        "max_param_change": 100.0,
        "min_group_size": policy.fairness.min_group_size,
        "max_group_share": policy.fairness.max_group_share,
        "max_reward_gap": policy.fairness.max_reward_gap,
        "bias_on_fail": policy.fairness.on_fail,
    }
    # the five samples that pushed hardest, largest |advantage| first
    top = data["top_samples"]
    assert len(top) == 5
    assert all(set(t) == {"sample_id", "reward", "advantage"} for t in top)
    reward_of = dict(zip((s.sample_id for s in batch.samples), batch.rewards, strict=True))
    advantage_of = dict(zip((s.sample_id for s in batch.samples), proposal.advantages, strict=True))
    assert len({t["sample_id"] for t in top}) == 5
    for t in top:
        assert t["reward"] == reward_of[t["sample_id"]]
        assert t["advantage"] == round(advantage_of[t["sample_id"]], 6)
    magnitudes = [abs(t["advantage"]) for t in top]
    assert magnitudes == sorted(magnitudes, reverse=True)
    left_out = set(advantage_of) - {t["sample_id"] for t in top}
    assert all(abs(advantage_of[s]) <= min(magnitudes) + 1e-6 for s in left_out)

    assert approved.payload == {
        "cycle": 0,
        "rule": "auto_small_step",
        "reasons": approved.payload["reasons"],
        "approver": "gate:auto",
    }
    assert len(approved.payload["reasons"]) == 2  # probe KL and parameter change
    assert "max_step_kl" in approved.payload["reasons"][0]
    assert applied.payload == {"cycle": 0, "model_sha256": after}

    # checkpoint_every = 1: the new live weights and the optimizer state are stored
    assert saved.payload["model_sha256"] == after
    assert saved.payload["reason"] == "periodic"
    assert saved.payload["with_optimizer"] is True
    assert _assert_checkpoint_entries_load(rig) == [saved]
    restored, optimizer = rig.checkpoints.load(saved.payload["checkpoint_id"])
    _assert_state_equal(restored, state_of(rig.model))
    _assert_same(optimizer, rig.learner.optimizer.state_dict())
    assert optimizer["state"]  # AdamW moments after one step, not an empty state


def test_checkpoint_only_every_nth_applied_update(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(tmp_path, fresh_lm, policy=_policy(every=2))
    reports = [rig.guard.run_cycle(c, REQUESTS, rng_seed=SEED + c) for c in range(3)]
    assert [r.outcome for r in reports] == ["approved"] * 3
    assert rig.guard.applied == 3
    rig.guard.audit.close()
    assert rig.types() == [*APPROVED, *APPROVED, "checkpoint_saved", *APPROVED]
    entries = rig.entries()
    applied = [e for e in entries if e.type == "update_applied"]
    proposed = [e for e in entries if e.type == "update_proposed"]
    # each update starts from the weights the previous one made live
    for previous, nxt in zip(applied, proposed[1:], strict=False):
        assert nxt.payload["base_sha256"] == previous.payload["model_sha256"]
    for p, a in zip(proposed, applied, strict=True):
        assert p.payload["candidate_sha256"] == a.payload["model_sha256"]
    (saved,) = _assert_checkpoint_entries_load(rig)
    assert saved.payload["model_sha256"] == applied[1].payload["model_sha256"]
    assert applied[2].payload["model_sha256"] == rig.learner.live_sha256
    assert [e.type for e in entries].index("checkpoint_saved") == 6  # right after 2nd apply


def test_save_checkpoint_stores_live_weights_and_optimizer(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(tmp_path, fresh_lm, policy=_policy(every=100))
    rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)
    checkpoint_id = rig.guard.save_checkpoint("final")
    rig.guard.audit.close()
    assert rig.types() == [*APPROVED, "checkpoint_saved"]
    (saved,) = _assert_checkpoint_entries_load(rig)
    assert saved.payload == {
        "checkpoint_id": checkpoint_id,
        "model_sha256": rig.learner.live_sha256,
        "with_optimizer": True,
        "reason": "final",
    }
    model_state, optimizer = rig.checkpoints.load(checkpoint_id)
    _assert_state_equal(model_state, state_of(rig.model))
    _assert_same(optimizer, rig.learner.optimizer.state_dict())
    # a checkpoint outside an update signs no head by itself
    assert len(rig.recorded) == 1


def test_rejected_update_changes_nothing(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(tmp_path, fresh_lm, policy=_policy(max_kl=1e-9, reject_kl=1e-8))
    before = rig.learner.live_sha256
    report = rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)
    assert report.outcome == "rejected"
    assert rig.learner.live_sha256 == before == module_sha256(rig.model)
    assert rig.guard.applied == 0
    assert list(rig.checkpoints.manifests_dir.iterdir()) == []
    assert rig.checkpoints.stored_bytes() == 0
    rig.guard.audit.close()
    assert rig.types() == ["update_proposed", "update_rejected"]
    rejected = rig.only("update_rejected")
    assert set(rejected.payload) == {"cycle", "rule", "reasons"}
    assert rejected.payload["cycle"] == 0
    assert rejected.payload["rule"] == "reject_step_kl"
    assert len(rejected.payload["reasons"]) == 1
    assert "reject_step_kl" in rejected.payload["reasons"][0]
    assert rig.only("update_proposed").payload["base_sha256"] == before
    assert rig.recorded == [["update_proposed", "update_rejected"]]


def test_audit_log_holds_no_text_and_no_identities(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(
        tmp_path,
        fresh_lm,
        extra_checks=[
            DataBiasCheck(max_group_share=1.0, max_reward_gap=2.0, min_group_size=1),
        ],
    )
    for cycle in range(2):
        rig.guard.run_cycle(cycle, REQUESTS, rng_seed=SEED + cycle)
    rig.guard.save_checkpoint("final")
    rig.guard.audit.close()
    raw = rig.audit_path.read_text(encoding="utf-8")
    entries = read_log(rig.audit_path)
    strings = [s for e in entries for s in _strings(dataclasses.asdict(e))]

    # every text the guard produced: shown ones reached the rater, the rest trained as penalties
    produced = {s.sample_id: s for s in rig.feedback.seen}
    produced.update({s.sample_id: s for b in rig.spy.batches for s in b.samples})
    assert any(BLOCK_CHAR in s.text for s in produced.values())
    texts = [s.text for s in produced.values() if len(s.text) >= 4]
    assert len(texts) >= 12
    for text in texts:
        assert text not in raw, text
        assert not any(text in s for s in strings), text
    for subject in (r.subject for r in REQUESTS):
        assert subject not in raw
        assert not any(subject in s for s in strings), subject
    assert "sports:" not in raw  # not even the prompt
    # sample ids (cycle, request and sample numbers, no identity) name the top samples
    top_ids = [
        t["sample_id"]
        for e in entries
        if e.type == "update_proposed"
        for t in e.payload["top_samples"]
    ]
    assert top_ids
    assert set(top_ids) <= set(produced)
    # the fairness figures name groups, which is what they are for
    assert '"share_of_batch"' in raw


def test_cycles_are_reproducible_from_the_seed(
    tmp_path: Path, tiny_lm: tuple[nn.Module, object]
) -> None:
    reports, candidates, payloads = [], [], []
    for run in ("a", "b"):
        lm = (copy.deepcopy(tiny_lm[0]), tiny_lm[1])
        (tmp_path / run).mkdir()
        rig = _rig(tmp_path / run, lm)
        reports.append(rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED))
        candidates.append(rig.learner.live_sha256)
        rig.guard.audit.close()
        payloads.append([(e.seq, e.type, e.payload) for e in rig.entries()])
    assert reports[0] == reports[1]
    assert candidates[0] == candidates[1]
    # same entries with the same payloads: commitments, stats, checks, checkpoint ids
    assert payloads[0] == payloads[1]


# -- replay inputs ------------------------------------------------------------------------------


def test_replay_store_round_trips_the_batch_of_an_update(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(tmp_path, fresh_lm)
    for cycle in range(2):
        rig.guard.run_cycle(cycle, REQUESTS, rng_seed=SEED + cycle)
    rig.guard.audit.close()
    assert rig.replay_store is not None
    rig.replay_store.close()
    assert "replay_inputs" in rig.guard.stage_seconds

    proposed = [e for e in rig.entries() if e.type == "update_proposed"]
    store = ReplayStore(rig.consent_path)  # reopened: the sealed rows are on disk
    try:
        for entry, seen in zip(proposed, rig.spy.batches, strict=True):
            cycle = entry.payload["cycle"]
            loaded = store.load_batch(cycle)
            assert loaded.cycle == seen.cycle == cycle
            assert len(loaded) == len(seen) == entry.payload["batch_size"]
            assert [s.sample_id for s in loaded.samples] == [s.sample_id for s in seen.samples]
            assert [s.subject for s in loaded.samples] == [s.subject for s in seen.samples]
            assert [s.prompt_ids for s in loaded.samples] == [s.prompt_ids for s in seen.samples]
            assert [s.completion_ids for s in loaded.samples] == [
                s.completion_ids for s in seen.samples
            ]
            assert loaded.rewards == seen.rewards
            assert loaded.group_keys == seen.group_keys
            assert batch_commitment(loaded) == entry.payload["batch_sha256"]
            assert batch_commitment(seen) == entry.payload["batch_sha256"]
            assert all(s.text == "" and s.prompt == "" for s in loaded.samples)  # no text kept
    finally:
        store.close()

    # sealed: neither ids nor token lists are readable in the stored rows
    with sqlite3.connect(rig.consent_path) as db:
        rows = db.execute("SELECT ciphertext FROM replay_inputs").fetchall()
    assert len(rows) == sum(len(b) for b in rig.spy.batches)
    sample_ids = [s.sample_id.encode() for b in rig.spy.batches for s in b.samples]
    for (sealed,) in rows:
        assert b"sample_id" not in bytes(sealed)
        assert not any(sid in bytes(sealed) for sid in sample_ids)


def test_erasing_a_subject_makes_their_batches_unreplayable(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(tmp_path, fresh_lm)
    rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)
    assert rig.replay_store is not None
    (seen,) = rig.spy.batches
    bob_rows = sum(1 for s in seen.samples if s.subject == "u-bob-91c2")
    assert bob_rows > 0

    # erasing somebody who is not in the batch changes nothing
    assert rig.replay_store.erase_subject("u-carol-55d0") == 0
    assert batch_commitment(rig.replay_store.load_batch(0)) == batch_commitment(seen)

    assert rig.replay_store.erase_subject("u-bob-91c2") == bob_rows
    with pytest.raises(ReplayInputsErased):
        rig.replay_store.load_batch(0)
    rig.replay_store.close()
    store = ReplayStore(rig.consent_path)  # and it stays erased
    try:
        with pytest.raises(ReplayInputsErased) as info:
            store.load_batch(0)
        assert info.value.got == 0
    finally:
        store.close()
    with sqlite3.connect(rig.consent_path) as db:
        assert db.execute(
            "SELECT COUNT(*) FROM subject_keys WHERE subject = ?", ("u-bob-91c2",)
        ).fetchone() == (0,)
        assert db.execute(
            "SELECT COUNT(*) FROM replay_inputs WHERE subject = ?", ("u-bob-91c2",)
        ).fetchone() == (0,)


def test_on_update_recorded_runs_once_per_update_after_its_entries(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    switch = SwitchableCheck()
    rig = _rig(tmp_path, fresh_lm, consenting=(), extra_checks=[switch])
    assert rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED).outcome is None
    assert rig.recorded == []  # a skipped cycle proposes nothing

    for subject in CONSENTING:
        rig.consent.grant_pseudonym(subject, [PURPOSE], text_sha256="consent-text-v1")
    assert rig.guard.run_cycle(1, REQUESTS, rng_seed=SEED + 1).outcome == "approved"
    switch.fail = True
    assert rig.guard.run_cycle(2, REQUESTS, rng_seed=SEED + 2).outcome == "pending"
    # only carol, who never consented, asks: nothing to learn from
    assert rig.guard.run_cycle(3, REQUESTS[2:], rng_seed=SEED + 3).outcome is None

    after_approved = ["cycle_skipped", *APPROVED, "checkpoint_saved"]
    after_pending = [*after_approved, "update_proposed", "update_pending"]
    # once per proposed update, each time with all of that update's entries already written
    assert rig.recorded == [after_approved, after_pending]
    rig.guard.audit.close()
    assert rig.types() == [*after_pending, "cycle_skipped"]


REPLAY_TABLES = ("replay_inputs", "replay_batches")


def test_replay_store_and_callback_are_optional(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(tmp_path, fresh_lm, replay=False, callback=False)
    assert rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED).outcome == "approved"
    rig.guard.audit.close()
    assert rig.types() == [*APPROVED, "checkpoint_saved"]
    with sqlite3.connect(rig.consent_path) as db:  # the tables exist (one schema), empty
        stored = [db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in REPLAY_TABLES]
    assert stored == [0, 0]


def _sample(request: int, k: int, subject: str = "u-x") -> Sample:
    return Sample(f"c1-r{request}-k{k}", 1, subject, "p", f"text {request}{k}", (0, 5), (k, 7))


def test_batch_of_drops_requests_with_fewer_than_two_rewards() -> None:
    samples = [_sample(0, 0), _sample(0, 1), _sample(0, 2), _sample(1, 0), _sample(1, 1)]
    accepted = [
        Feedback("c1-r0-k0", "u-x", 1.0, "person", "A"),
        Feedback("c1-r0-k2", "u-x", 0.0, "person", "A"),
        Feedback("c1-r1-k1", "u-x", 1.0, "person", "A"),
    ]
    batch = _batch_of(1, samples, accepted)
    assert [s.sample_id for s in batch.samples] == ["c1-r0-k0", "c1-r0-k2"]
    assert batch.rewards == (1.0, 0.0)
    assert batch.group_keys == ("c1-r0", "c1-r0")
    assert [f.sample_id for f in batch.feedback] == ["c1-r0-k0", "c1-r0-k2"]
    assert batch.cycle == 1


def test_request_key() -> None:
    assert request_key(_sample(5, 1)) == "c1-r5"
    long = Sample("c12-r30-k11", 12, "s", "", "", (), ())
    assert request_key(long) == "c12-r30"


def test_batch_commitment_covers_ids_tokens_rewards_but_not_text() -> None:
    samples = (_sample(0, 0), _sample(0, 1))
    base = Batch(1, samples, (1.0, 0.0), ("c1-r0", "c1-r0"), ())
    digest = batch_commitment(base)
    renamed = tuple(
        Sample(s.sample_id, s.cycle, "u-other", "q", "other text", s.prompt_ids, s.completion_ids)
        for s in samples
    )
    assert batch_commitment(Batch(1, renamed, base.rewards, base.group_keys, ())) == digest
    assert batch_commitment(Batch(1, samples, (0.0, 1.0), base.group_keys, ())) != digest
    retokened = (samples[0], Sample("c1-r0-k1", 1, "u-x", "p", "t", (0, 5), (1, 8)))
    assert batch_commitment(Batch(1, retokened, base.rewards, base.group_keys, ())) != digest
    assert len(digest) == 64


def test_cycle_report_rates() -> None:
    empty = CycleReport(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, None)
    assert math.isnan(empty.like_rate)
    assert math.isnan(empty.blocked_share)
    report = CycleReport(0, 8, 2, 0, 0, 6, 4, 3, 0, 6, "approved")
    assert report.like_rate == 0.75
    assert report.blocked_share == 0.25


def test_redacted_items_are_shown_redacted_and_escalated_ones_are_held(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    from guarded_rl.safety.screen import Backend

    def has(char: str):
        def score(texts: Sequence[str]) -> list[float]:
            return [1.0 if char in t else 0.0 for t in texts]

        return score

    screen = FilterScreen(
        {
            "e_is_private": Backend(has("e"), 0.5, "redact", sees="original"),
            "a_is_doubtful": Backend(has("a"), 0.5, "escalate", sees="original"),
        },
        redactor=lambda text: text.replace("e", "[E]"),
    )
    rig = _rig(tmp_path, fresh_lm, screen=screen)
    samples = _generated(fresh_lm)
    verdicts = screen.screen(samples)
    assert {v.action for v in verdicts} >= {"redact", "escalate"}, "seed gives no mix"
    report = rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)
    shown_texts = [s.text for s in rig.feedback.seen]
    assert shown_texts and all("e" not in t.replace("[E]", "") for t in shown_texts)
    held = {v.sample_id for v in verdicts if v.action == "escalate"}
    assert held.isdisjoint(s.sample_id for s in rig.feedback.seen)
    assert all(s.sample_id not in held for b in rig.spy.batches for s in b.samples)
    assert report.escalated == len(held) and report.redacted > 0
    rig.guard.audit.close()
    counts = rig.entries()[0].payload["counts"]
    assert counts["by_action"]["escalate"] == len(held)
    assert counts["by_action"]["redact"] == report.redacted
    assert counts["by_backend"]["a_is_doubtful"] == len(held)

    # a liked redacted output trains with at most the cap (0): the person saw placeholders,
    # the model wrote the personal data
    redacted = {v.sample_id for v in verdicts if v.action == "redact"}
    rated = {s.sample_id: float(s.completion_ids[0] % 2) for s in rig.feedback.seen}
    liked_redacted = {i for i in redacted if rated.get(i) == 1.0}
    assert liked_redacted, "seed gives no liked redacted output"
    assert counts["redacted_rewards_capped"] == len(liked_redacted)
    for batch in rig.spy.batches:
        for sample, reward in zip(batch.samples, batch.rewards, strict=True):
            if sample.sample_id in redacted:
                assert reward <= 0.0
            elif sample.sample_id in rated:
                assert reward == rated[sample.sample_id]

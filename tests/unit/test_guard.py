"""The Guard: one real guarded cycle on the tiny GPT-2, stage by stage."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from guarded_rl.approval.gate import KLGate
from guarded_rl.approval.probe_kl import ProbeKLCheck
from guarded_rl.audit.checkpoints import CheckpointStore
from guarded_rl.audit.log import AuditLog, read_log
from guarded_rl.consent.store import SQLiteConsentStore
from guarded_rl.errors import InputError
from guarded_rl.fairness.feedback_check import feedback_by_group
from guarded_rl.guard import CycleReport, Guard, _batch_of, batch_commitment, request_key
from guarded_rl.learn.lm_generator import LMGenerator
from guarded_rl.learn.lm_learner import CausalLMLearner
from guarded_rl.policy import AuditPolicy, GatePolicy, GuardPolicy, LearnerPolicy
from guarded_rl.records import Batch, CheckResult, Feedback, Request, Sample, UpdateProposal
from guarded_rl.safety.screen import FilterScreen
from guarded_rl.weights import module_sha256, state_of

PURPOSE = "model_training"
BLOCK_CHAR = "e"  # the prompt "sports:" has none, so only completions decide
PROBES = ["sports: Team wins", "health: New clinic"]
REQUESTS = [
    Request("u-alice-7f3a", "A", "sports:"),
    Request("u-bob-91c2", "B", "sports:"),
    Request("u-carol-55d0", "A", "sports:"),  # never consents
]
CONSENTING = ("u-alice-7f3a", "u-bob-91c2")
SEED = 0  # a seed under which some samples are blocked and some shown (checked in the tests)


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
    """A check that keeps the batch it was given (and passes)."""

    name: str = "batch_spy"
    batches: list[Batch] = field(default_factory=list)

    def __call__(self, proposal: UpdateProposal, batch: Batch) -> CheckResult:
        self.batches.append(batch)
        return CheckResult(self.name, passed=True, metrics={"n": len(batch)})


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
    checkpoints: CheckpointStore


def _policy(max_kl: float = 50.0, reject_kl: float = 100.0, every: int = 1) -> GuardPolicy:
    return GuardPolicy(
        learner=LearnerPolicy(samples_per_prompt=4, max_new_tokens=4, learning_rate=1e-2),
        gate=GatePolicy(max_step_kl=max_kl, reject_step_kl=reject_kl, probe_texts=PROBES),
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
) -> Rig:
    model, tok = lm
    policy = policy or _policy()
    consent_path = tmp_path / "feedback.sqlite"
    consent = SQLiteConsentStore(consent_path)
    for subject in consenting:
        consent.grant(subject, PURPOSE)
    learner = CausalLMLearner(model, tok, policy.learner)
    spy = BatchSpy()
    checks = [
        ProbeKLCheck(model, tok, policy.gate.probe_texts, reference=learner.reference),
        spy,
        *extra_checks,
    ]
    audit_path = tmp_path / "audit.jsonl"
    checkpoints = CheckpointStore(tmp_path / "checkpoints")
    feedback = feedback or RecordingFeedback()
    guard = Guard(
        policy=policy,
        generator=LMGenerator(model, tok, policy.learner),
        screen=FilterScreen({"block_char": (block_char_filter, 0.5)}),
        feedback_source=feedback,
        consent=consent,
        learner=learner,
        checks=checks,
        gate=KLGate(policy.gate),
        audit=AuditLog(audit_path),
        checkpoints=checkpoints,
        current_state=lambda: state_of(model),
    )
    return Rig(guard, model, learner, feedback, spy, audit_path, consent_path, checkpoints)


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
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


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
    assert len(subjects) == 8
    assert "u-carol-55d0" not in subjects
    # carol was still shown her safe outputs: consent governs training, not service
    assert any(s.subject == "u-carol-55d0" for s in rig.feedback.seen)


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
    assert entry.kind == "cycle"
    assert entry.data["update"] is None
    assert entry.data["counts"]["refused_no_consent"] == 12


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


def test_raising_check_fails_and_gate_does_not_approve(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(tmp_path, fresh_lm, extra_checks=[exploding_check])
    live = rig.learner.live_sha256
    report = rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)
    assert report.outcome == "pending"
    assert rig.learner.live_sha256 == live == module_sha256(rig.model)
    rig.guard.audit.close()
    entry = read_log(rig.audit_path)[-1]
    checks = {c["name"]: c for c in entry.data["checks"]}
    assert checks["exploding_check"]["passed"] is False
    assert checks["exploding_check"]["message"] == "check raised RuntimeError"
    assert checks["probe_kl"]["passed"] is True
    assert entry.data["decision"]["rule"] == "failed_checks"
    # the held candidate is kept for review, content-addressed
    candidate = entry.data["proposal"]["candidate_sha256"]
    assert entry.data["checkpoint"] == candidate
    assert rig.checkpoints.path_for(candidate).is_file()
    assert entry.data["live_sha256_after"] == live


def test_check_returning_no_check_result_counts_as_failed(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    def sloppy(proposal: UpdateProposal, batch: Batch) -> dict[str, bool]:
        return {"passed": True}

    rig = _rig(tmp_path, fresh_lm, extra_checks=[sloppy])
    report = rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)
    assert report.outcome == "pending"


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
    (entry,) = read_log(rig.audit_path)
    assert entry.kind == "update"
    data = entry.data
    assert data["cycle"] == 0
    assert data["rng_seed"] == SEED
    assert data["live_sha256"] == before
    assert data["proposal"]["base_sha256"] == before
    assert data["proposal"]["candidate_sha256"] == after
    assert data["live_sha256_after"] == after
    assert data["decision"]["outcome"] == "approved"
    assert data["decision"]["rule"] == "auto_small_step"
    assert data["batch_sha256"] == batch_commitment(rig.spy.batches[0])
    assert data["counts"] == {
        "generated": report.generated,
        "blocked": report.blocked,
        "blocked_by_reason": {"block_char": report.blocked},
        "shown": report.shown,
        "rated": report.rated,
        "liked": report.liked,
        "refused_no_consent": report.refused_no_consent,
        "training_samples": report.training_samples,
    }
    # checkpoint_every = 1: the new live weights are stored under their commitment
    assert data["checkpoint"] == after
    restored = rig.checkpoints.load(after)
    live_state = state_of(rig.model)
    assert set(restored) == set(live_state)
    assert all(torch.equal(restored[k], live_state[k]) for k in restored)


def test_checkpoint_only_every_nth_applied_update(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(tmp_path, fresh_lm, policy=_policy(every=2))
    first = rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)
    second = rig.guard.run_cycle(1, REQUESTS, rng_seed=SEED + 1)
    assert (first.outcome, second.outcome) == ("approved", "approved")
    rig.guard.audit.close()
    entries = read_log(rig.audit_path)
    assert [e.data["checkpoint"] for e in entries] == [None, rig.learner.live_sha256]
    assert entries[1].data["live_sha256"] == entries[0].data["live_sha256_after"]


def test_rejected_update_changes_nothing(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(tmp_path, fresh_lm, policy=_policy(max_kl=1e-9, reject_kl=1e-8))
    before = rig.learner.live_sha256
    report = rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED)
    assert report.outcome == "rejected"
    assert rig.learner.live_sha256 == before == module_sha256(rig.model)
    assert rig.guard.applied == 0
    assert list((tmp_path / "checkpoints").iterdir()) == []
    rig.guard.audit.close()
    assert read_log(rig.audit_path)[0].data["checkpoint"] is None


def test_audit_log_holds_no_text_and_no_identities(
    tmp_path: Path, fresh_lm: tuple[nn.Module, object]
) -> None:
    rig = _rig(
        tmp_path,
        fresh_lm,
        extra_checks=[
            lambda p, b: feedback_by_group(b.feedback, min_group_size=1),
        ],
    )
    for cycle in range(2):
        rig.guard.run_cycle(cycle, REQUESTS, rng_seed=SEED + cycle)
    rig.guard.audit.close()
    raw = rig.audit_path.read_text(encoding="utf-8")
    strings = [s for e in read_log(rig.audit_path) for s in _strings(e.model_dump())]

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
    assert "sports:" not in raw  # not even the prompt
    # the fairness figures name groups, which is what they are for
    assert '"like_rate_by_group"' in raw


def test_cycles_are_reproducible_from_the_seed(
    tmp_path: Path, tiny_lm: tuple[nn.Module, object]
) -> None:
    import copy

    reports, candidates = [], []
    for run in ("a", "b"):
        lm = (copy.deepcopy(tiny_lm[0]), tiny_lm[1])
        (tmp_path / run).mkdir()
        rig = _rig(tmp_path / run, lm)
        reports.append(rig.guard.run_cycle(0, REQUESTS, rng_seed=SEED))
        candidates.append(rig.learner.live_sha256)
    assert reports[0] == reports[1]
    assert candidates[0] == candidates[1]


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
    empty = CycleReport(0, 0, 0, 0, 0, 0, 0, 0, None)
    assert math.isnan(empty.like_rate)
    assert math.isnan(empty.blocked_share)
    report = CycleReport(0, 8, 2, 6, 4, 3, 0, 6, "approved")
    assert report.like_rate == 0.75
    assert report.blocked_share == 0.25

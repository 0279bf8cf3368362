"""The real TRL `GRPOTrainer` on the embedded default model, on CPU, guarded by `GuardCallback`
and `guarded_reward`: a rejected step leaves the parameters and the optimizer state exactly as
before it; kept steps train; every step, with its rewards and screen counts, is on the record;
people without training consent get no reward."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("trl")

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from guarded_rl.audit.log import read_log
from guarded_rl.commands.verify import verify_run
from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
from guarded_rl.integrations.rewards import GuardedReward, guarded_reward
from guarded_rl.integrations.transformers import GuardCallback
from guarded_rl.learn.causal_lm import load_causal_lm
from guarded_rl.policy import GatePolicy, GuardPolicy
from guarded_rl.weights import state_of

READERS = ["ana", "ben", "cy", "dee"]  # "dee" gave no training consent
STEPS = 3


def likes_short(prompts: list[Any], completions: list[str], **kwargs: Any) -> list[float]:
    """Varies within every group of completions, so every step has a gradient."""
    return [1.0 / (1 + len(c.split())) for c in completions]


def _train(
    tmp_path: Path, policy: GuardPolicy, watcher: Any, *, consent: bool
) -> tuple[GuardCallback, GuardedReward, dict[str, torch.Tensor], torch.nn.Module]:
    """Three GRPO steps of one prompt (one reader) and 4 completions each."""
    model, tokenizer = load_causal_lm()  # the embedded default model
    start = state_of(model, clone=True)
    store = SQLiteFeedbackStore(tmp_path / "feedback.sqlite")
    for reader in READERS[:-1]:
        store.grant(reader, ["training"], text_sha256="0" * 64)
    reward = guarded_reward(
        likes_short, policy=policy, store=store if consent else None, user_column="reader"
    )
    probe = torch.tensor([tokenizer("science: Researchers find")["input_ids"]])  # type: ignore[operator]
    guard = GuardCallback(probe=probe, run_dir=tmp_path / "run", policy=policy, reward=reward)
    bos = tokenizer.bos_token  # type: ignore[attr-defined]
    data = Dataset.from_dict({"prompt": [bos] * 8, "reader": READERS * 2})
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=12,
        max_steps=STEPS,
        learning_rate=1e-3,
        beta=0.0,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        callbacks=[guard, watcher],
    )
    trainer.train()
    store.close()
    return guard, reward, start, model


def test_rejected_grpo_steps_leave_parameters_and_optimizer_state_as_before(
    tmp_path: Path, step_watcher: Any
) -> None:
    rejecting = GuardPolicy(gate=GatePolicy(max_step_kl=1e-13, reject_step_kl=1e-12))
    guard, _, start, model = _train(tmp_path, rejecting, step_watcher, consent=False)
    assert [d.outcome for d in guard.decisions] == ["rejected"] * STEPS
    assert step_watcher.unchanged == [True] * STEPS  # weights and optimizer state, each step
    assert all(torch.equal(state_of(model)[k], start[k]) for k in start)
    assert verify_run(tmp_path / "run").ok
    entries = read_log(tmp_path / "run" / "audit.jsonl")
    assert [e.type for e in entries].count("update_rejected") == STEPS


def test_kept_grpo_steps_train_and_record_rewards_screen_counts_and_consent(
    tmp_path: Path, step_watcher: Any
) -> None:
    keeping = GuardPolicy(
        gate=GatePolicy(max_step_kl=5.0, reject_step_kl=10.0, max_param_change=10.0)
    )
    guard, reward, start, model = _train(tmp_path, keeping, step_watcher, consent=True)
    assert [d.outcome for d in guard.decisions] == ["approved"] * STEPS
    assert not all(torch.equal(state_of(model)[k], start[k]) for k in start)
    proposed = [
        e.payload for e in read_log(tmp_path / "run" / "audit.jsonl") if e.type == "update_proposed"
    ]
    screened = [p["screened"] for p in proposed]
    assert len(screened) == STEPS and all(s["completions"] == 4 for s in screened)
    assert sum(s.get("no_consent", 0) for s in screened) == reward.stats["no_consent"]
    assert 0 < reward.stats["no_consent"] < reward.stats["completions"]
    for step, counts, payload, zero in zip(
        range(STEPS), screened, proposed, step_watcher.zero_gradient, strict=True
    ):
        # the reader without training consent got no reward: their step had no gradient
        # (Adam's momentum from earlier steps still moves the weights: that is not theirs)
        no_consent = counts.get("no_consent", 0)
        assert no_consent in (0, 4), step
        assert zero == (no_consent == 4), step
        assert payload["rewards"]["count"] == 4 - no_consent
    assert verify_run(tmp_path / "run").ok

"""GuardCallback in a real `transformers.Trainer`: a rejected step leaves the model parameters
and the optimizer state exactly as they were before it; kept steps go on; every step is on the
signed record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from transformers import Trainer, TrainingArguments

from guarded_rl.audit.log import read_log
from guarded_rl.commands.verify import verify_run
from guarded_rl.errors import InputError
from guarded_rl.integrations.transformers import GuardCallback, text_probe
from guarded_rl.policy import GatePolicy, GuardPolicy
from guarded_rl.weights import state_of


class Lines(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, tokenizer: Any) -> None:
        texts = ["sports: Home team wins the final", "health: New clinic opens"] * 4
        self.rows = [tokenizer(t)["input_ids"][:12] for t in texts]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = torch.tensor(self.rows[i])
        return {"input_ids": ids, "labels": ids.clone()}


def _train(
    model: nn.Module, tok: Any, tmp_path: Path, policy: GuardPolicy, watcher: Any
) -> tuple[GuardCallback, Any]:
    probe = torch.tensor([tok("sports: Team wins")["input_ids"]])
    guard = GuardCallback(probe=probe, run_dir=tmp_path / "run", policy=policy)
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=3,
        per_device_train_batch_size=2,
        learning_rate=1e-2,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    Trainer(model=model, args=args, train_dataset=Lines(tok), callbacks=[guard, watcher]).train()
    return guard, watcher


def test_rejected_steps_leave_weights_and_optimizer_as_before(
    fresh_lm: tuple[nn.Module, object], tmp_path: Path, step_watcher: Any
) -> None:
    model, tok = fresh_lm
    start = state_of(model, clone=True)
    rejecting = GuardPolicy(gate=GatePolicy(max_step_kl=1e-13, reject_step_kl=1e-12))
    guard, watcher = _train(model, tok, tmp_path, rejecting, step_watcher)
    assert [d.outcome for d in guard.decisions] == ["rejected"] * 3
    assert watcher.unchanged == [True, True, True]
    assert all(torch.equal(state_of(model)[k], start[k]) for k in start)
    assert verify_run(tmp_path / "run").ok


def test_kept_steps_train_and_every_step_is_recorded(
    fresh_lm: tuple[nn.Module, object], tmp_path: Path, step_watcher: Any
) -> None:
    model, tok = fresh_lm
    start = state_of(model, clone=True)
    keeping = GuardPolicy(
        gate=GatePolicy(max_step_kl=5.0, reject_step_kl=10.0, max_param_change=10.0)
    )
    guard, watcher = _train(model, tok, tmp_path, keeping, step_watcher)
    assert [d.outcome for d in guard.decisions] == ["approved"] * 3
    assert watcher.unchanged == [False, False, False]
    assert not all(torch.equal(state_of(model)[k], start[k]) for k in start)
    types = [e.type for e in read_log(tmp_path / "run" / "audit.jsonl")]
    assert types.count("update_proposed") == types.count("update_applied") == 3
    assert types[-1] == "run_finished" and verify_run(tmp_path / "run").ok


def test_text_probe_gives_the_logits_inside_each_text_whatever_the_padding(
    tiny_lm: tuple[nn.Module, object],
) -> None:
    model, tok = tiny_lm
    texts = ["sports: Team wins", "health: A new clinic opens in the north today"]
    together = text_probe(tok, texts)(model)
    alone = [text_probe(tok, [t])(model) for t in texts]
    assert together.shape == (sum(a.shape[0] for a in alone), alone[0].shape[1])
    assert torch.allclose(together, torch.cat(alone), atol=1e-5)
    with pytest.raises(InputError, match="no probe texts"):
        text_probe(tok, [])

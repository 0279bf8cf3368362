"""The plain-PyTorch integration: a kept step is exactly the optimizer's step; a rejected or
held one leaves weights and optimizer state exactly as before; held steps can be approved by
a signed review; the run directory verifies."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from guarded_rl.approval.decision import sign_decision
from guarded_rl.approval.queue import drop_in_inbox
from guarded_rl.approval.reviewers import create_reviewer_key, load_reviewer_key
from guarded_rl.audit.explain import explain_update, render_explanation
from guarded_rl.audit.history import RunHistory
from guarded_rl.audit.log import read_log
from guarded_rl.commands.verify import verify_run
from guarded_rl.errors import InputError
from guarded_rl.integrations.torch import GuardedLoop
from guarded_rl.policy import GatePolicy, GuardPolicy
from guarded_rl.records import Batch, CheckResult, UpdateProposal
from guarded_rl.weights import state_of

PROBES = torch.eye(4)


def _model_and_optimizer(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = nn.Linear(4, 6)
    return model, torch.optim.AdamW(model.parameters(), lr=0.05)


def _backward(model: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    contexts = torch.rand(32, 4, generator=gen)
    dist = torch.distributions.Categorical(logits=model(contexts))
    items = dist.sample()
    rewards = (items == contexts.argmax(1)).float()
    (-(dist.log_prob(items) * (rewards - rewards.mean())).mean()).backward()


def _equal_states(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _equal_optimizer(a: dict, b: dict) -> bool:  # type: ignore[type-arg]
    if a["param_groups"] != b["param_groups"] or a["state"].keys() != b["state"].keys():
        return False
    return all(
        torch.equal(torch.as_tensor(a["state"][i][k]), torch.as_tensor(b["state"][i][k]))
        for i in a["state"]
        for k in a["state"][i]
    )


def _policy(**gate: object) -> GuardPolicy:
    return GuardPolicy(gate=GatePolicy(max_param_change=0.5, **gate))  # type: ignore[arg-type]


def test_a_kept_step_is_exactly_the_optimizer_step(tmp_path: Path) -> None:
    model, optimizer = _model_and_optimizer()
    plain, plain_opt = copy.deepcopy(model), None
    plain_opt = torch.optim.AdamW(plain.parameters(), lr=0.05)
    guard = GuardedLoop(model, optimizer, run_dir=tmp_path / "run", probe=PROBES, policy=_policy())
    for step in range(3):
        for m, opt in ((model, None), (plain, plain_opt)):
            torch.manual_seed(step)
            _backward(m, step)
            if opt is not None:
                torch.nn.utils.clip_grad_norm_(list(m.parameters()), 1.0)
                opt.step()
                opt.zero_grad()
        assert guard.step(rewards=[1.0, 0.0]).outcome == "approved"
    guard.close()
    assert _equal_states(state_of(model), state_of(plain))
    assert _equal_optimizer(optimizer.state_dict(), plain_opt.state_dict())
    report = verify_run(tmp_path / "run")
    assert report.ok, report.failure
    types = [e.type for e in read_log(tmp_path / "run" / "audit.jsonl")]
    assert types.count("update_applied") == 3 and types[-1] == "run_finished"


@pytest.mark.parametrize(
    ("gate", "outcome"),
    [
        ({"reject_step_kl": 1e-12, "max_step_kl": 1e-13}, "rejected"),
        ({"max_step_kl": 1e-12}, "pending"),
    ],
)
def test_rejected_and_held_steps_restore_weights_and_optimizer(
    tmp_path: Path, gate: dict[str, float], outcome: str
) -> None:
    model, optimizer = _model_and_optimizer()
    guard = GuardedLoop(model, optimizer, run_dir=tmp_path / "run", probe=PROBES, policy=_policy())
    _backward(model, 0)
    assert guard.step().outcome == "approved"  # some optimizer state exists now
    guard.gate.policy = GatePolicy(max_param_change=0.5, **gate)  # type: ignore[arg-type]
    before_w = state_of(model, clone=True)
    before_opt = copy.deepcopy(optimizer.state_dict())
    _backward(model, 1)
    assert guard.step().outcome == outcome
    assert _equal_states(state_of(model), before_w)
    assert _equal_optimizer(optimizer.state_dict(), before_opt)
    assert all(p.grad is None for p in model.parameters())
    guard.close()
    assert verify_run(tmp_path / "run").ok


def test_a_held_step_is_applied_by_a_signed_review(tmp_path: Path) -> None:
    create_reviewer_key("bob", "reviewer", tmp_path / "bob.key", tmp_path / "r.toml")
    create_reviewer_key("olivia", "operator", tmp_path / "olivia.key", tmp_path / "r.toml")
    policy = _policy(max_step_kl=1e-12, reviewers=str(tmp_path / "r.toml"))
    model, optimizer = _model_and_optimizer()
    run_dir = tmp_path / "run"
    guard = GuardedLoop(
        model,
        optimizer,
        run_dir=run_dir,
        probe=PROBES,
        policy=policy,
        operator_key=tmp_path / "olivia.key",  # four-eyes: the operator proves who they are
    )
    _backward(model, 0)
    assert guard.step().outcome == "pending"
    [held] = guard.review.pending
    signed = sign_decision(
        load_reviewer_key(tmp_path / "bob.key"),
        origin=guard.review.origin,
        proposal_id=held.proposal_id,
        candidate_sha256=held.candidate_sha256,
        decision="approve",
        note="ok",
    )
    drop_in_inbox(run_dir, signed)  # as `guarded-rl review approve` does while the loop runs
    _backward(model, 1)
    guard.step()  # settles the inbox first: the approved candidate goes live
    types = [e.type for e in read_log(run_dir / "audit.jsonl")]
    at = types.index("review_decision")
    assert types[at : at + 3] == ["review_decision", "update_approved", "update_applied"]
    assert guard.settlement.applied == 1
    guard.close()
    assert verify_run(run_dir).decisions == 1


def test_bad_probe_and_use_after_close_are_clear_errors(tmp_path: Path) -> None:
    model, optimizer = _model_and_optimizer()
    with pytest.raises(InputError, match="probe"):
        GuardedLoop(model, optimizer, run_dir=tmp_path / "a", probe="inputs")  # type: ignore[arg-type]
    with GuardedLoop(model, optimizer, run_dir=tmp_path / "b", probe=PROBES) as guard:
        pass
    with pytest.raises(InputError, match="closed"):
        guard.step()
    with pytest.raises(InputError, match="not empty"):
        GuardedLoop(model, optimizer, run_dir=tmp_path / "b", probe=PROBES)


def test_screen_uses_the_policy_filters(tmp_path: Path) -> None:
    model, optimizer = _model_and_optimizer()
    with GuardedLoop(model, optimizer, run_dir=tmp_path / "run", probe=PROBES) as guard:
        verdicts = guard.screen(["a lovely day in the park", "mail me at jo@example.org"])
    assert [v.action for v in verdicts] == ["allow", "block"]


def test_failed_checks_hold_or_reject_and_screen_counts_are_explained(tmp_path: Path) -> None:
    """A failed check holds the step; a failed check named in `blocking` rejects it; a check
    that raises has failed. The step's screen counts reach its entry and `audit explain`."""

    def too_fast(proposal: UpdateProposal, batch: Batch) -> CheckResult:
        return CheckResult("too_fast", False, {"change": 1.0}, "moves too fast")

    def broken(proposal: UpdateProposal, batch: Batch) -> CheckResult:
        raise RuntimeError("backend down")

    for checks, blocking, outcome in (
        ([too_fast], (), "pending"),
        ([too_fast], ("too_fast",), "rejected"),
        ([broken], ("broken",), "rejected"),
    ):
        model, optimizer = _model_and_optimizer()
        before = state_of(model, clone=True)
        run_dir = tmp_path / f"run-{outcome}-{len(blocking)}-{checks[0].__name__}"
        guard = GuardedLoop(
            model,
            optimizer,
            probe=PROBES,
            policy=_policy(),
            checks=checks,
            blocking=blocking,
            run_dir=run_dir,
        )
        _backward(model, 0)
        decision = guard.step(rewards=[1.0, 0.0], screened={"blocked": 2, "shown": 30})
        guard.close()
        assert decision.outcome == outcome, (checks, blocking)
        assert _equal_states(state_of(model), before)
        assert verify_run(run_dir).ok
    history = RunHistory.load(run_dir)
    text = render_explanation(explain_update(history, 0))
    assert "on 2 rewards (mean 0.5)" in text
    assert "The loop's screen counted: blocked 2, shown 30." in text

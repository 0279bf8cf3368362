"""CausalLMLearner: RLOO steps on a tiny real GPT-2, proposed first and applied on approval."""

from __future__ import annotations

import torch
from torch import nn

from guarded_rl.guard import request_key
from guarded_rl.learn.causal_lm import completion_logprobs, encode_prompt
from guarded_rl.learn.lm_generator import LMGenerator
from guarded_rl.learn.lm_learner import CausalLMLearner
from guarded_rl.policy import LearnerPolicy
from guarded_rl.records import Batch, Request, Sample
from guarded_rl.weights import module_sha256, state_of

REWARDED = frozenset(range(150))  # first completion token in the lower half of the vocabulary


def _batch(samples: list[Sample], rewards: list[float], cycle: int = 0) -> Batch:
    return Batch(
        cycle=cycle,
        samples=tuple(samples),
        rewards=tuple(rewards),
        group_keys=tuple(request_key(s) for s in samples),
        feedback=(),
    )


def _rated_batch(
    generator: LMGenerator, cycle: int, n_requests: int = 4, k: int = 8
) -> tuple[Batch, list[Sample]]:
    requests = [Request(f"s{i}", "A", "sports:") for i in range(n_requests)]
    samples = generator.generate(requests, k, cycle)
    rewards = [1.0 if s.completion_ids[0] in REWARDED else 0.0 for s in samples]
    return _batch(samples, rewards, cycle), samples


def _p_rewarded(model: nn.Module, tok: object) -> float:
    ids = torch.tensor([encode_prompt(tok, "sports:")])
    with torch.no_grad():
        probs = torch.softmax(model(input_ids=ids).logits[0, -1], -1)
    return float(probs[sorted(REWARDED)].sum())


def _seq_logp(model: nn.Module, tok: object, batch: Batch) -> torch.Tensor:
    with torch.no_grad():
        logp, _ = completion_logprobs(
            model,
            [s.prompt_ids for s in batch.samples],
            [s.completion_ids for s in batch.samples],
            tok.pad_token_id,  # type: ignore[attr-defined]
        )
    return logp.sum(1)


def test_propose_leaves_live_weights_and_reference_alone(
    fresh_lm: tuple[nn.Module, object],
) -> None:
    model, tok = fresh_lm
    settings = LearnerPolicy(learning_rate=1e-2, max_new_tokens=4)
    learner = CausalLMLearner(model, tok, settings)
    torch.manual_seed(0)
    batch, _ = _rated_batch(LMGenerator(model, tok, settings), cycle=0, n_requests=2, k=4)
    live = learner.live_sha256
    before = state_of(model, clone=True)
    ref = module_sha256(learner.reference)
    assert ref == live  # the reference is a frozen copy of the starting model

    proposal = learner.propose(batch)

    assert module_sha256(model) == live == learner.live_sha256
    assert all(torch.equal(t, before[n]) for n, t in state_of(model).items())
    assert module_sha256(learner.reference) == ref
    assert proposal.candidate_sha256 != live
    assert proposal.base_sha256 == live
    assert proposal.stats["samples"] == 8.0
    assert proposal.stats["kl_ref"] == 0.0
    assert set(proposal.stats) >= {"pg_loss", "loss", "mean_reward", "grad_norm"}

    learner.apply(proposal)
    assert module_sha256(model) == proposal.candidate_sha256 == learner.live_sha256
    assert module_sha256(learner.reference) == ref
    assert learner.propose(batch).stats["kl_ref"] > 0.0


def test_one_step_favours_rewarded_samples_of_its_batch(fresh_lm: tuple[nn.Module, object]) -> None:
    model, tok = fresh_lm
    settings = LearnerPolicy(learning_rate=1e-2, max_new_tokens=4, kl_coef=0.0)
    learner = CausalLMLearner(model, tok, settings)
    torch.manual_seed(1)
    batch, _ = _rated_batch(LMGenerator(model, tok, settings), cycle=0)
    rewarded = torch.tensor(batch.rewards) > 0.5
    assert 0 < int(rewarded.sum()) < len(batch)
    before = _seq_logp(model, tok, batch)
    learner.apply(learner.propose(batch))
    after = _seq_logp(model, tok, batch)
    gain = after - before
    assert float(gain[rewarded].mean()) > 0.0
    assert float(gain[rewarded].mean()) > float(gain[~rewarded].mean())


def test_repeated_steps_raise_frequency_of_rewarded_tokens(
    fresh_lm: tuple[nn.Module, object],
) -> None:
    model, tok = fresh_lm
    settings = LearnerPolicy(learning_rate=5e-2, max_new_tokens=3, kl_coef=0.0)
    learner = CausalLMLearner(model, tok, settings)
    generator = LMGenerator(model, tok, settings)
    start = _p_rewarded(model, tok)
    torch.manual_seed(0)
    for cycle in range(8):
        batch, _ = _rated_batch(generator, cycle)
        learner.apply(learner.propose(batch))
    assert _p_rewarded(model, tok) > start + 0.1


def test_kl_coefficient_holds_the_policy_back(fresh_lm: tuple[nn.Module, object]) -> None:
    """With the same batches, a strong KL penalty ends closer to the reference."""
    from guarded_rl.learn.causal_lm import probe_kl

    model, tok = fresh_lm
    texts = ["sports: Team wins", "travel: Cheap flights"]
    ends = {}
    for kl_coef in (0.0, 5.0):
        torch.manual_seed(0)
        policy = type(model)(model.config)
        policy.load_state_dict(model.state_dict())
        policy.eval()
        settings = LearnerPolicy(learning_rate=5e-2, max_new_tokens=3, kl_coef=kl_coef)
        learner = CausalLMLearner(policy, tok, settings)
        generator = LMGenerator(model, tok, settings)  # same samples for both runs
        for cycle in range(4):
            batch, _ = _rated_batch(generator, cycle, n_requests=2, k=4)
            learner.apply(learner.propose(batch))
        ends[kl_coef] = probe_kl(policy, learner.reference, tok, texts)
    assert ends[5.0] < ends[0.0]

"""The sampler: the right distribution, completions that end at EOS, and the fallback to
transformers' own `generate` for models it cannot drive step by step."""

from __future__ import annotations

import torch
from torch import nn

from guarded_rl.learn.causal_lm import (
    _cache_argument,
    completion_logprobs,
    draw_tokens,
    sample_completions,
)


def test_draw_tokens_follows_the_distribution() -> None:
    probs = torch.tensor([0.5, 0.0, 0.2, 0.3, 0.0])
    torch.manual_seed(0)
    draws = draw_tokens(probs.expand(200_000, -1).contiguous())
    freq = torch.bincount(draws, minlength=5).float() / draws.numel()
    assert freq[1] == 0 and freq[4] == 0  # impossible tokens are never drawn
    assert torch.allclose(freq, probs, atol=0.005)


def test_draw_tokens_tolerates_rows_that_do_not_sum_to_one() -> None:
    probs = torch.tensor([[0.0, 0.0, 0.3], [1e-9, 0.0, 0.0]])  # float drift, extreme mass
    torch.manual_seed(1)
    for _ in range(100):
        assert draw_tokens(probs).tolist() == [2, 0]


def test_samples_end_at_eos_and_have_finite_logprobs(tiny_lm: tuple[nn.Module, object]) -> None:
    model, tok = tiny_lm
    eos = tok.eos_token_id  # type: ignore[attr-defined]
    torch.manual_seed(3)
    gens = sample_completions(model, tok, ["sports:", "health: New"] * 20, max_new_tokens=12)
    assert len(gens) == 40
    for g in gens:
        assert 1 <= len(g.completion_ids) <= 12
        assert eos not in g.completion_ids[:-1]  # nothing after an EOS
    logp, mask = completion_logprobs(
        model, [g.prompt_ids for g in gens], [g.completion_ids for g in gens], eos
    )
    assert torch.isfinite(logp[mask.bool()]).all()  # every sampled token had probability > 0


def test_same_seed_same_samples_and_the_seed_matters(tiny_lm: tuple[nn.Module, object]) -> None:
    model, tok = tiny_lm

    def sample(seed: int) -> list[tuple[int, ...]]:
        torch.manual_seed(seed)
        return [
            g.completion_ids
            for g in sample_completions(model, tok, ["sports:"] * 8, max_new_tokens=6)
        ]

    assert sample(5) == sample(5)
    assert sample(5) != sample(6)


class _NoPositions(nn.Module):
    """A model whose forward takes no position ids: the loop falls back to `generate`."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.generated = 0

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> object:
        return self.inner(input_ids=input_ids, attention_mask=attention_mask)

    def generate(self, **kwargs: object) -> torch.Tensor:
        self.generated += 1
        return self.inner.generate(**kwargs)  # type: ignore[operator]


def test_models_without_a_steppable_forward_use_generate(tiny_lm: tuple[nn.Module, object]) -> None:
    model, tok = tiny_lm
    assert _cache_argument(model) in ("cache", "past_key_values")
    wrapped = _NoPositions(model)
    assert _cache_argument(wrapped) is None
    torch.manual_seed(0)
    gens = sample_completions(wrapped, tok, ["sports:"] * 4, max_new_tokens=5)
    assert wrapped.generated == 1 and len(gens) == 4
    assert all(1 <= len(g.completion_ids) <= 5 for g in gens)

"""Loading, sampling and scoring causal LMs, on a tiny real GPT-2 (see tests/conftest.py)."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch import nn

from guarded_rl.errors import ModelLoadError
from guarded_rl.learn.causal_lm import (
    completion_logprobs,
    encode_prompt,
    load_causal_lm,
    probe_kl,
    sample_completions,
)

PROMPTS = ["sports:", "science: New map of", "", "travel: Cheap"]


@contextmanager
def eos_boost(model: nn.Module, eos: int, boost: float) -> Iterator[None]:
    """Raise the EOS logit so that some samples end early (a real change to the head's output)."""

    def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[..., eos] += boost
        return output

    handle = model.lm_head.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _manual_logprobs(model: nn.Module, prompt: tuple[int, ...], completion: tuple[int, ...]):
    ids = torch.tensor([list(prompt) + list(completion)])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
    return torch.stack([logp[len(prompt) + j - 1, tok] for j, tok in enumerate(completion)])


def _manual_probe_kl(p_model: nn.Module, q_model: nn.Module, ids: list[int]) -> tuple[float, int]:
    x = torch.tensor([ids])
    with torch.no_grad():
        logp = torch.log_softmax(p_model(input_ids=x).logits[0], -1)
        logq = torch.log_softmax(q_model(input_ids=x).logits[0], -1)
    per_pos = (logp.exp() * (logp - logq)).sum(-1)[:-1]  # last position predicts past the text
    return float(per_pos.sum()), len(ids) - 1


def _perturbed(model: nn.Module, scale: float = 0.05, seed: int = 0) -> nn.Module:
    other = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return other


def test_loaded_model_and_tokenizer(tiny_lm: tuple[nn.Module, object]) -> None:
    model, tok = tiny_lm
    assert not model.training
    assert tok.eos_token_id is not None
    assert tok.pad_token_id is not None
    assert next(model.parameters()).dtype == torch.float32
    assert model.config.vocab_size == len(tok)


def test_encode_prompt_prefixes_bos(tiny_lm: tuple[nn.Module, object]) -> None:
    _, tok = tiny_lm
    assert encode_prompt(tok, "") == [tok.bos_token_id]
    ids = encode_prompt(tok, "sports: Team")
    assert ids[0] == tok.bos_token_id
    assert ids[1:] == tok.encode("sports: Team", add_special_tokens=False)
    assert tok.decode(ids[1:]) == "sports: Team"


def test_samples_end_at_eos_or_max_new_tokens(tiny_lm: tuple[nn.Module, object]) -> None:
    model, tok = tiny_lm
    eos = tok.eos_token_id
    torch.manual_seed(0)
    with eos_boost(model, eos, 4.0):
        gens = sample_completions(model, tok, PROMPTS * 6, max_new_tokens=6)
    assert len(gens) == len(PROMPTS) * 6
    ended = [g for g in gens if g.completion_ids and g.completion_ids[-1] == eos]
    cut = [g for g in gens if eos not in g.completion_ids]
    assert ended and cut, "expected both outcomes with the boosted EOS"
    assert len(ended) + len(cut) == len(gens)
    for g in ended:
        assert 1 <= len(g.completion_ids) <= 6
        assert eos not in g.completion_ids[:-1]  # nothing is kept after the EOS
    assert any(len(g.completion_ids) < 6 for g in ended)
    for g in cut:
        assert len(g.completion_ids) == 6
    for g, prompt in zip(gens, PROMPTS * 6, strict=True):
        assert g.prompt_ids == tuple(encode_prompt(tok, prompt))
        expected_text = tok.decode(list(g.completion_ids), skip_special_tokens=True).strip()
        assert g.text == expected_text
        assert "<|endoftext|>" not in g.text


def test_sampling_is_deterministic_under_manual_seed(tiny_lm: tuple[nn.Module, object]) -> None:
    model, tok = tiny_lm
    torch.manual_seed(42)
    first = sample_completions(model, tok, PROMPTS, max_new_tokens=5)
    torch.manual_seed(42)
    second = sample_completions(model, tok, PROMPTS, max_new_tokens=5)
    torch.manual_seed(43)
    third = sample_completions(model, tok, PROMPTS, max_new_tokens=5)
    assert first == second
    assert [g.completion_ids for g in third] != [g.completion_ids for g in first]


def test_left_padding_does_not_change_what_a_prompt_gets(
    tiny_lm: tuple[nn.Module, object],
) -> None:
    """Near-greedy sampling: a prompt batched with longer ones gets what it gets alone."""
    model, tok = tiny_lm
    batch = sample_completions(model, tok, PROMPTS, max_new_tokens=5, temperature=1e-4)
    alone = [
        sample_completions(model, tok, [p], max_new_tokens=5, temperature=1e-4)[0] for p in PROMPTS
    ]
    assert len({len(g.prompt_ids) for g in batch}) == len(PROMPTS)  # really mixed lengths
    assert [g.completion_ids for g in batch] == [g.completion_ids for g in alone]


def test_completion_logprobs_match_manual_computation(tiny_lm: tuple[nn.Module, object]) -> None:
    model, tok = tiny_lm
    prompts = [tuple(encode_prompt(tok, p)) for p in PROMPTS]
    completions = [(5, 17, 42), (7,), (100, 101, 102, 103, 104), (tok.eos_token_id,)]
    with torch.no_grad():
        logp, mask = completion_logprobs(model, prompts, completions, tok.pad_token_id)
    assert logp.shape == mask.shape == (4, 5)
    assert mask.sum(1).tolist() == [3.0, 1.0, 5.0, 1.0]
    for i, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        manual = _manual_logprobs(model, p, c)
        assert torch.allclose(logp[i, : len(c)], manual, atol=1e-5)
        assert torch.all(logp[i, len(c) :] == 0)
        assert math.isclose(float(logp[i].sum()), float(manual.sum()), abs_tol=1e-4)
        assert bool((manual < 0).all())


def test_completion_logprobs_of_sampled_outputs(tiny_lm: tuple[nn.Module, object]) -> None:
    model, tok = tiny_lm
    torch.manual_seed(3)
    gens = sample_completions(model, tok, PROMPTS, max_new_tokens=4)
    logp, _ = completion_logprobs(
        model, [g.prompt_ids for g in gens], [g.completion_ids for g in gens], tok.pad_token_id
    )
    assert logp.requires_grad  # differentiable when grad is on
    for i, g in enumerate(gens):
        manual = _manual_logprobs(model, g.prompt_ids, g.completion_ids)
        assert torch.allclose(logp[i, : len(g.completion_ids)].detach(), manual, atol=1e-5)


def test_probe_kl_zero_for_same_model_positive_after_perturbation(
    tiny_lm: tuple[nn.Module, object],
) -> None:
    model, tok = tiny_lm
    texts = ["sports: Team wins", "health: New clinic opens"]
    assert abs(probe_kl(model, model, tok, texts)) < 1e-7
    assert abs(probe_kl(model, copy.deepcopy(model), tok, texts)) < 1e-7
    other = _perturbed(model)
    assert probe_kl(model, other, tok, texts) > 1e-4
    assert probe_kl(other, model, tok, texts) > 1e-4
    bigger = _perturbed(model, scale=0.5)
    assert probe_kl(model, bigger, tok, texts) > probe_kl(model, other, tok, texts)


def test_probe_kl_is_the_mean_over_real_positions(tiny_lm: tuple[nn.Module, object]) -> None:
    """Padding and the last token of each text are excluded from the mean."""
    model, tok = tiny_lm
    other = _perturbed(model, scale=0.2, seed=5)
    texts = ["sports: A", "science: Researchers map the deep sea"]
    totals, counts = zip(
        *(
            _manual_probe_kl(model, other, [*encode_prompt(tok, t), tok.eos_token_id])
            for t in texts
        ),
        strict=True,
    )
    assert counts[0] != counts[1]
    expected = sum(totals) / sum(counts)
    assert math.isclose(probe_kl(model, other, tok, texts), expected, rel_tol=1e-4)


def test_load_missing_directory_raises_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no_model_here"
    with pytest.raises(ModelLoadError) as info:
        load_causal_lm(missing)
    line = str(info.value)
    assert "\n" not in line
    assert str(missing) in line
    assert info.value.exit_code == 1


def test_load_directory_without_config_raises(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"no config\.json") as info:
        load_causal_lm(tmp_path)
    assert "\n" not in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_load_directory_with_only_a_config_raises(tmp_path: Path, tiny_model_dir: Path) -> None:
    config = json.loads((tiny_model_dir / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="cannot load model") as info:
        load_causal_lm(tmp_path)
    assert "\n" not in str(info.value)


def test_load_round_trip_gives_the_same_weights(
    tiny_lm: tuple[nn.Module, object], tiny_model_dir: Path
) -> None:
    from guarded_rl.weights import module_sha256

    again, tok = load_causal_lm(str(tiny_model_dir))
    assert module_sha256(again) == module_sha256(tiny_lm[0])
    assert tok.encode("sports: x") == tiny_lm[1].encode("sports: x")


def test_uncached_hub_id_fails_fast_offline() -> None:
    with pytest.raises(ModelLoadError, match="cannot load model") as info:
        load_causal_lm("no-such-org/no-such-tiny-model")
    assert "no-such-org/no-such-tiny-model" in str(info.value)

"""Loading, sampling and scoring causal language models, the Hugging Face way.

Any model `AutoModelForCausalLM.from_pretrained` can load works here: the embedded default is
loaded through exactly the same path as a hub model. Prompts are prefixed with the tokenizer's
BOS token (GPT-2 style models are trained on `<bos>text<eos>`), so an empty prompt asks the
model to write whatever it writes best.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from guarded_rl.errors import ModelLoadError

#: The embedded default model: a tiny GPT-2 trained on a generated news-headline corpus.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "demo" / "model"


@dataclass(frozen=True, slots=True)
class Generation:
    """One sampled completion, as token ids and text."""

    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    text: str


def load_causal_lm(model: str | os.PathLike[str] | None = None) -> tuple[nn.Module, object]:
    """Load a model and its tokenizer from a local directory or a (cached) hub id.

    `None` loads the embedded default. Errors become one-line `ModelLoadError`s that name what
    was asked for; with `HF_HUB_OFFLINE=1` an uncached hub id fails fast instead of hanging.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    source = str(model) if model is not None else str(DEFAULT_MODEL_DIR)
    local = Path(source)
    if local.exists() and not (local / "config.json").is_file():
        raise ModelLoadError(
            "directory has no config.json",
            field="--model",
            got=source,
            expected="a directory written by save_pretrained, or a hub id",
        )
    hf_logging.set_verbosity_error()  # keep progress bars and advice out of the CLI's output
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        lm = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"cannot load model: {first}",
            field="--model",
            got=source,
            expected="a local save_pretrained directory or a hub id available offline",
        ) from None
    if tokenizer.eos_token_id is None:
        raise ModelLoadError(
            "tokenizer has no end-of-sequence token",
            field="--model",
            got=source,
            expected="a causal LM tokenizer with an eos token",
        )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm.eval()
    return lm, tokenizer


def encode_prompt(tokenizer: object, prompt: str) -> list[int]:
    """`<bos>` + the prompt's tokens (no other special tokens)."""
    ids: list[int] = tokenizer.encode(prompt, add_special_tokens=False) if prompt else []  # type: ignore[attr-defined]  # a Hugging Face tokenizer/model, typed object (no stubs)
    bos = tokenizer.bos_token_id  # type: ignore[attr-defined]  # a Hugging Face tokenizer/model, typed object (no stubs)
    if bos is not None:
        ids = [bos, *ids]
    if not ids:
        raise ModelLoadError(
            "empty prompt and the tokenizer has no BOS token",
            field="prompt",
            got=prompt,
            expected="a non-empty prompt",
        )
    return ids


def pad_rows(
    rows: Sequence[Sequence[int]], pad_id: int, *, left: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows as one `[N, width]` id tensor and its attention mask (1 on real tokens)."""
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        span = slice(width - len(r), width) if left else slice(0, len(r))
        input_ids[i, span] = torch.tensor(list(r), dtype=torch.long)
        attention[i, span] = 1
    return input_ids, attention


@torch.no_grad()
def sample_completions(
    model: nn.Module,
    tokenizer: object,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
) -> list[Generation]:
    """Sample one completion per prompt (repeat a prompt to get K samples) from the full
    distribution (no top-k/top-p: the learner's log-probabilities must be those sampled from).

    Uses torch's global RNG: seed it for reproducible samples.
    """
    eos = tokenizer.eos_token_id  # type: ignore[attr-defined]  # a Hugging Face tokenizer/model, typed object (no stubs)
    pad = tokenizer.pad_token_id  # type: ignore[attr-defined]  # a Hugging Face tokenizer/model, typed object (no stubs)
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    width = max(len(ids) for ids in encoded)
    # left padding: every completion starts in the same column
    input_ids, attention = pad_rows(encoded, pad, left=True)
    cache_arg = _cache_argument(model)
    if cache_arg is not None:
        new_ids = _sample_with_cache(
            model, input_ids, attention, cache_arg, max_new_tokens, temperature, eos, pad
        )
    else:  # a model whose forward we cannot drive step by step: transformers' own loop
        out = model.generate(  # type: ignore[operator]  # a Hugging Face tokenizer/model, typed object (no stubs)
            input_ids=input_ids,
            attention_mask=attention,
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            eos_token_id=eos,
        )
        new_ids = out[:, width:]
    generations = []
    for row, ids in enumerate(encoded):
        new = new_ids[row].tolist()
        if eos in new:
            new = new[: new.index(eos) + 1]  # the EOS is part of the action: it ends the output
        text = tokenizer.decode(new, skip_special_tokens=True).strip()  # type: ignore[attr-defined]  # a Hugging Face tokenizer/model, typed object (no stubs)
        generations.append(Generation(tuple(ids), tuple(new), text))
    return generations


def _cache_argument(model: nn.Module) -> str | None:
    """The name under which `model.forward` takes its key/value cache (`cache` in newer
    transformers, `past_key_values` before), if it also takes position ids."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return None
    if "position_ids" not in params:
        return None
    return next((name for name in ("cache", "past_key_values") if name in params), None)


def _sample_with_cache(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention: torch.Tensor,
    cache_arg: str,
    max_new_tokens: int,
    temperature: float,
    eos: int,
    pad: int,
) -> torch.Tensor:
    """Ancestral sampling with a key/value cache, one token per step for every row.

    Draws each token by inverse-CDF from one uniform number per row: the same distribution as
    `torch.multinomial`, without the exponential draw per vocabulary entry that dominated the
    time of transformers' sampler (a third of it on the demo model). Rows that ended (EOS)
    get `pad` from then on; the loop stops when every row has ended.
    """
    n = input_ids.shape[0]
    positions = (attention.long().cumsum(-1) - 1).clamp_min(0)
    only_last = _logits_to_keep_argument(model)  # the prompt's other logits are not needed
    out = model(
        input_ids=input_ids,
        attention_mask=attention,
        position_ids=positions,
        use_cache=True,
        **({only_last: 1} if only_last else {}),
    )
    running = torch.ones(n, dtype=torch.bool)
    tokens: list[torch.Tensor] = []
    for step in range(max_new_tokens):
        logits = out.logits[:, -1, :].float()
        probs = torch.softmax(logits / temperature if temperature != 1.0 else logits, dim=-1)
        token = torch.where(
            running, draw_tokens(probs), torch.full_like(running, pad, dtype=torch.long)
        )
        tokens.append(token)
        running &= token != eos
        if step == max_new_tokens - 1 or not bool(running.any()):
            break
        attention = torch.cat([attention, attention.new_ones((n, 1))], dim=1)
        positions = (attention.long().sum(-1, keepdim=True) - 1).clamp_min(0)
        out = model(
            input_ids=token.unsqueeze(1),
            attention_mask=attention,
            position_ids=positions,
            use_cache=True,
            **{cache_arg: _cache_of(out)},
        )
    return torch.stack(tokens, dim=1)


def draw_tokens(probs: torch.Tensor) -> torch.Tensor:
    """One index per row of `probs` ([N, V], rows summing to 1), drawn by inverse CDF from a
    single uniform number per row (torch's global RNG)."""
    cdf = probs.cumsum(-1)
    u = torch.rand(probs.shape[0], 1) * cdf[:, -1:]  # scaled by the total: float sums drift
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_max(probs.shape[1] - 1)


def _logits_to_keep_argument(model: nn.Module) -> str | None:
    import inspect

    params = inspect.signature(model.forward).parameters
    return next((n for n in ("logits_to_keep", "num_logits_to_keep") if n in params), None)


def _cache_of(output: object) -> object:
    cache = getattr(output, "past_key_values", None)
    return cache if cache is not None else getattr(output, "cache", None)


def completion_logprobs(
    model: nn.Module,
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    pad_id: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each sampled completion token under `model`.

    Returns `(logp, mask)`, both `[N, T]` with T the longest completion; `mask` is 1 on real
    completion tokens. Differentiable when called with grad enabled.
    """
    rows = [list(p) + list(c) for p, c in zip(prompt_ids, completion_ids, strict=True)]
    t_max = max(len(c) for c in completion_ids)
    n = len(rows)
    input_ids, attention = pad_rows(rows, pad_id)  # right padding: positions start at 0
    logits = model(input_ids=input_ids, attention_mask=attention).logits
    logp_all = torch.log_softmax(logits.float(), dim=-1)
    # the token at position j is predicted by the logits at position j - 1
    logp_next = logp_all[:, :-1].gather(2, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    index = torch.zeros((n, t_max), dtype=torch.long)
    mask = torch.zeros((n, t_max), dtype=torch.float32)
    for i, (p, c) in enumerate(zip(prompt_ids, completion_ids, strict=True)):
        start = len(p) - 1
        index[i, : len(c)] = torch.arange(start, start + len(c))
        mask[i, : len(c)] = 1.0
    logp = logp_next.gather(1, index) * mask
    return logp, mask


@torch.no_grad()
def probe_logprobs(
    model: nn.Module, tokenizer: object, texts: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token log-distributions `[N, T, V]` over fixed texts, and the mask of positions
    inside the texts (the last token of each text predicts past it and is left out)."""
    eos = tokenizer.eos_token_id  # type: ignore[attr-defined]  # a Hugging Face tokenizer/model, typed object (no stubs)
    encoded = [[*encode_prompt(tokenizer, t), eos] for t in texts]
    input_ids, attention = pad_rows(encoded, tokenizer.pad_token_id)  # type: ignore[attr-defined]  # a Hugging Face tokenizer/model, typed object (no stubs)
    logits = model(input_ids=input_ids, attention_mask=attention).logits
    valid = attention.clone().float()
    valid[torch.arange(len(encoded)), attention.sum(1) - 1] = 0.0
    return torch.log_softmax(logits.float(), -1), valid


def mean_kl(logp: torch.Tensor, logq: torch.Tensor, valid: torch.Tensor) -> float:
    """Mean over valid positions of KL(p || q) between full next-token distributions."""
    per_pos = (logp.exp() * (logp - logq)).sum(-1)
    return float((per_pos * valid).sum() / valid.sum().clamp_min(1.0))


def probe_kl(model: nn.Module, other: nn.Module, tokenizer: object, texts: Sequence[str]) -> float:
    """Mean per-token KL(model || other) over the full next-token distributions of fixed texts.

    This is the drift the approval gate looks at: how much an update changes what the model
    would say on the same inputs, independent of what it happened to sample this cycle.
    """
    logp, valid = probe_logprobs(model, tokenizer, texts)
    logq, _ = probe_logprobs(other, tokenizer, texts)
    return mean_kl(logp, logq, valid)

__all__ = [
    "Generation",
    "load_causal_lm",
    "sample_completions",
]

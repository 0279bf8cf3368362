"""Build the embedded default model: a tiny GPT-2 news-headline generator.

Reproducible from the repository: a generated corpus (`guarded_rl.demo.corpus`), a byte-level
BPE tokenizer trained with the `tokenizers` library, and a 4-layer GPT-2 trained with plain
PyTorch; saved with `save_pretrained` so it loads like any Hugging Face model.

    python -m guarded_rl.demo.build_model --out guarded_rl/demo/model
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import time
from pathlib import Path

import torch

from guarded_rl.demo.corpus import build_corpus

EOS = "<|endoftext|>"


def train_tokenizer(lines: list[str], vocab_size: int) -> object:
    """Byte-level BPE (GPT-2 style) with one special token used as BOS, EOS and padding."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOS, eos_token=EOS, pad_token=EOS, unk_token=EOS
    )


def build(
    out: Path,
    *,
    n_lines: int = 24_000,
    seed: int = 0,
    vocab_size: int = 2048,
    n_embd: int = 128,
    n_layer: int = 4,
    n_head: int = 4,
    epochs: int = 4,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    log: bool = True,
) -> dict[str, object]:
    """Train and save the model to `out`; return the training record (also saved as JSON)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    started = time.time()
    random.seed(seed)
    torch.manual_seed(seed)
    corpus = build_corpus(n_lines, seed=seed)
    lines = [h.line for h in corpus]
    tokenizer = train_tokenizer(lines, vocab_size)
    eos_id = tokenizer.eos_token_id  # type: ignore[attr-defined]  # a Hugging Face tokenizer, typed object (no stubs)
    encoded = [
        [eos_id, *tokenizer.encode(line, add_special_tokens=False), eos_id]  # type: ignore[attr-defined]  # a Hugging Face tokenizer, typed object (no stubs)
        for line in lines
    ]
    n_positions = 64
    encoded = [e[:n_positions] for e in encoded]

    config = GPT2Config(
        vocab_size=len(tokenizer),  # type: ignore[arg-type]  # a Hugging Face tokenizer, typed object (no stubs)
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    model = GPT2LMHeadModel(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(encoded) / batch_size)
    total = steps_per_epoch * epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * s / total))
    )
    order_rng = random.Random(seed)
    model.train()
    step = 0
    loss_value = float("nan")
    for epoch in range(epochs):
        order = list(range(len(encoded)))
        order_rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            rows = [encoded[i] for i in order[start : start + batch_size]]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), eos_id, dtype=torch.long)
            labels = torch.full((len(rows), width), -100, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, r in enumerate(rows):
                ids[i, : len(r)] = torch.tensor(r)
                labels[i, : len(r)] = torch.tensor(r)
                mask[i, : len(r)] = 1
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            loss_value = float(loss.detach())
            if log and step % 100 == 0:
                print(f"epoch {epoch + 1}/{epochs} step {step}/{total} loss {loss_value:.3f}")
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)  # type: ignore[attr-defined]  # a Hugging Face tokenizer, typed object (no stubs)
    record: dict[str, object] = {
        "corpus": {
            "lines": len(lines),
            "seed": seed,
            "unsafe_lines": sum(1 for h in corpus if h.unsafe),
            "sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest(),
        },
        "model": {
            "parameters": sum(p.numel() for p in model.parameters()),
            "n_embd": n_embd,
            "n_layer": n_layer,
            "n_head": n_head,
            "vocab_size": len(tokenizer),  # type: ignore[arg-type]  # a Hugging Face tokenizer, typed object (no stubs)
        },
        "training": {
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "steps": step,
            "final_loss": round(loss_value, 4),
            "seconds": round(time.time() - started, 1),
            "torch": torch.__version__,
        },
    }
    (out / "training_record.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "model")
    parser.add_argument("--lines", type=int, default=24_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    record = build(args.out, n_lines=args.lines, epochs=args.epochs, seed=args.seed)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()

"""TRL: `GRPOTrainer` trains the embedded headline model on readers' tastes, guarded.

Each row of the dataset is a reader asking for a headline; the reward is how likely that reader
is to like the completion (simulated readers of the demo feed, who never like insults, threats
or personal data). The lines marked `# guard` are all guarded-rl adds to the plain TRL script
(docs/integrations/trl.md shows the diff):

- `guarded_reward` screens every completion with the policy's safety filters: a blocked one
  gets the policy's penalty, and readers without a current training consent in the consent
  store get `None`, so their rows give no learning signal;
- `GuardCallback` gates every optimizer step (restoring the weights and the optimizer state
  exactly when the gate rejects or holds it) and writes it, with its rewards and the screen's
  counts, to the run's signed audit log.

    python examples/trl_grpo.py [--steps 100] [--seed 0] [--out runs/trl-<time>]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from guarded_rl import GatePolicy, GuardPolicy, SQLiteFeedbackStore  # guard
from guarded_rl.demo.users import Population
from guarded_rl.integrations.rewards import guarded_reward  # guard
from guarded_rl.integrations.transformers import GuardCallback, text_probe  # guard
from guarded_rl.learn.causal_lm import load_causal_lm, sample_completions

CONSENT_TEXT = "Your ratings may be used to train the headline model."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    default_out = Path("runs") / datetime.now().strftime("trl-%Y%m%d-%H%M%S-%f")
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    try:  # the `trl` extra; imported here so that `--help` works without it
        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer
    except ModuleNotFoundError as exc:
        sys.exit(f"trl_grpo.py needs {exc.name}: pip install 'guarded-rl[trl]'")

    torch.manual_seed(args.seed)
    model, tokenizer = load_causal_lm()  # the embedded default model
    population = Population(48, seed=args.seed)
    readers = {u.user_id: u for u in population.users}

    def reader_likes(prompts: list[str], completions: list[str], **kw: Any) -> list[float]:
        """How likely the reader of each row is to like the headline."""
        rows = zip(kw["reader"], completions, strict=True)
        return [readers[reader].like_probability(text) for reader, text in rows]

    def like_rate(n: int = 192) -> float:
        """Expected share of readers liking a fresh headline, over the whole population."""
        model.eval()
        with torch.no_grad():
            texts = [
                g.text for g in sample_completions(model, tokenizer, [""] * n, max_new_tokens=16)
            ]
        return sum(u.like_probability(t) for t in texts for u in population.users) / (
            len(texts) * len(population)
        )

    args.out.mkdir(parents=True, exist_ok=True)
    run_dir = args.out / "run"  # guard: audit log, checkpoints, review queue
    store = SQLiteFeedbackStore(args.out / "readers.sqlite")  # guard
    text_sha256 = hashlib.sha256(CONSENT_TEXT.encode()).hexdigest()  # guard
    for reader, purposes in population.consents().items():  # guard
        store.grant(reader, purposes, text_sha256=text_sha256)  # guard

    bos = tokenizer.bos_token  # type: ignore[attr-defined]
    rows = [u.user_id for u in population.users] * 8
    data = Dataset.from_dict({"prompt": [bos] * len(rows), "reader": rows})
    policy = GuardPolicy(gate=GatePolicy(max_step_kl=0.05))  # guard
    reward = guarded_reward(reader_likes, policy=policy, store=store, user_column="reader")  # guard
    probe = text_probe(tokenizer, policy.gate.probe_texts)  # guard: where drift is measured
    guard = GuardCallback(probe=probe, run_dir=run_dir, policy=policy, reward=reward)  # guard
    config = GRPOConfig(
        output_dir=str(args.out / "trainer"),
        per_device_train_batch_size=16,
        num_generations=8,
        max_completion_length=16,
        max_steps=args.steps,
        learning_rate=1e-3,
        beta=0.0,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=args.seed,
    )
    before = like_rate()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],  # guard: was reward_funcs=[reader_likes],
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        callbacks=[guard],  # guard
    )
    trainer.train()
    after = like_rate()
    print(f"like-rate before {before:.3f} after {after:.3f}")
    print(f"gate: {dict(Counter(d.outcome for d in guard.decisions))}")  # guard
    print(f"screen: {dict(reward.stats)}")  # guard
    print(f"run directory: {run_dir}")  # guard


if __name__ == "__main__":
    main()

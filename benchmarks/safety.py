"""Safety screen throughput: texts per second for the default stack and each backend.

Texts are short generated headlines (a mix of safe and unsafe ones), screened in batches of
1,024 as `guarded-rl screen` does. The Detoxify figure uses a tiny locally built checkpoint
(the real model is far slower; it is the architecture and loader that are exercised here).

    python benchmarks/safety.py [--texts 40000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from guarded_rl.demo.corpus import build_corpus
from guarded_rl.policy import GuardPolicy, SafetyPolicy
from guarded_rl.records import Sample
from guarded_rl.safety.blocklist import Blocklist
from guarded_rl.safety.normalize import normalize
from guarded_rl.safety.pii import pii_scores
from guarded_rl.safety.profanity import profanity_model
from guarded_rl.safety.screen import screen_from_policy
from guarded_rl.safety.threat import threat_scores

BATCH = 1024


def rate(fn: Callable[[Sequence[str]], object], texts: list[str]) -> float:
    fn(texts[:BATCH])  # warm up (model loads, regex compiles)
    start = time.perf_counter()
    for i in range(0, len(texts), BATCH):
        fn(texts[i : i + BATCH])
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=40_000)
    args = parser.parse_args()
    texts = [h.line for h in build_corpus(args.texts, seed=11)]
    normalized = [normalize(t) for t in texts]
    default = screen_from_policy(GuardPolicy().safety)

    def default_stack(batch: Sequence[str]) -> object:
        return default.screen([Sample(str(i), 0, "-", "", t, (), ()) for i, t in enumerate(batch)])

    plain = screen_from_policy(SafetyPolicy(builtin_safe_phrases=False))

    def stack_without_phrases(batch: Sequence[str]) -> object:
        return plain.screen([Sample(str(i), 0, "-", "", t, (), ()) for i, t in enumerate(batch)])

    blocklist = Blocklist(["idiot", "moron", "scum", "kill"])
    figures = {
        "default stack (normalize, profanity, threat, pii; decisions)": rate(default_stack, texts),
        "  the same without the safe-phrase list": rate(stack_without_phrases, texts),
        "normalize": rate(lambda b: [normalize(t) for t in b], texts),
        "profanity (on normalized text)": rate(profanity_model(), normalized),
        "threat rules (on normalized text)": rate(threat_scores, normalized),
        "pii (on original text)": rate(pii_scores, texts),
        "blocklist (on normalized text)": rate(blocklist, normalized),
    }
    try:
        from guarded_rl.safety.detoxify_local import build_local_checkpoint

        with tempfile.TemporaryDirectory() as tmp:
            checkpoint, config = build_local_checkpoint(Path(tmp))
            policy = SafetyPolicy(
                filters=["detoxify"],
                detoxify={"checkpoint": str(checkpoint), "huggingface_config_path": str(config)},
            )
            detox = screen_from_policy(policy).backends["detoxify"].score
            figures["detoxify (tiny local checkpoint)"] = rate(detox, normalized[:4096])
    except ImportError:
        pass
    print(f"{len(texts)} texts, mean {sum(map(len, texts)) / len(texts):.0f} characters")
    for name, value in figures.items():
        print(f"{name:<58}{value:>12,.0f} texts/s")


if __name__ == "__main__":
    main()

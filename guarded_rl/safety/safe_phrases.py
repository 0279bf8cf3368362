"""Benign fixed expressions hidden from word-level toxicity classifiers.

A unigram model scores "Dick Van Dyke", "pussy willow" or "Hell's Kitchen" by the one word it
knows as offensive. Names, species, dishes and trade terms like these have a fixed, benign
meaning, so the classifier backends score the text with such phrases removed: every other word
still counts, and the blocklist, threat and PII backends still see the whole text. The shipped
list (`data/safe_phrases.txt`) can be switched off or extended in the policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from guarded_rl.safety.filters import TextFilter
from guarded_rl.safety.normalize import normalize

BUILTIN_FILE = Path(__file__).with_name("data") / "safe_phrases.txt"


@lru_cache(maxsize=1)
def builtin_safe_phrases() -> tuple[str, ...]:
    """The shipped list: one phrase per line, `#` comments and blank lines skipped."""
    lines = BUILTIN_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


class SafePhrases:
    """Removes known benign phrases (and their plural) from normalized text."""

    def __init__(self, phrases: Iterable[str]) -> None:
        cleaned = sorted({normalize(p) for p in phrases if p.strip()}, key=len, reverse=True)
        if not cleaned:
            raise ValueError("no safe phrases")
        self.phrases = tuple(cleaned)
        alternatives = "|".join(map(re.escape, cleaned))
        self._pattern = re.compile(rf"(?<!\w)(?:{alternatives})s?(?!\w)")
        # A phrase can only match where its first word occurs as a substring: a few `in` tests
        # skip the regex for almost every text.
        firsts = sorted({p.split()[0] for p in cleaned}, key=len)
        self._keys = tuple(w for i, w in enumerate(firsts) if not any(k in w for k in firsts[:i]))

    def mask(self, text: str) -> str:
        """`text` (already normalized) with every safe phrase replaced by a space."""
        for key in self._keys:
            if key in text:
                return self._pattern.sub(" ", text)
        return text

    def found(self, text: str) -> list[str]:
        return self._pattern.findall(text)


def without_safe_phrases(score: TextFilter, phrases: SafePhrases) -> TextFilter:
    """`score` applied to texts with the safe phrases removed."""

    def masked_score(texts: Sequence[str]) -> Sequence[float]:
        return score([phrases.mask(t) for t in texts])

    return masked_score

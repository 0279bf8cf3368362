"""Policy blocklist: whole-word matches on normalized text.

Terms are normalized like the text, and matched at word boundaries, so "scunthorpe" does not
match a four-letter term inside it, while "i.d.i.o.t" and "1d10t" still match "idiot".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from guarded_rl.safety.normalize import normalize


class Blocklist:
    def __init__(self, terms: Sequence[str]) -> None:
        cleaned = sorted({normalize(t) for t in terms if t.strip()}, key=len, reverse=True)
        if not cleaned:
            raise ValueError("empty blocklist")
        self.terms = tuple(cleaned)
        self._pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, cleaned)) + r")\b")

    def __call__(self, texts: Sequence[str]) -> list[float]:
        """1.0 for a text (already normalized) holding a blocked term, else 0.0."""
        return [1.0 if self._pattern.search(t) else 0.0 for t in texts]

    def matches(self, text: str) -> list[str]:
        return self._pattern.findall(text)

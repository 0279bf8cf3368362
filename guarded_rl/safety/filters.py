"""Content filters as plain callables: a batch of texts in, one risk score in [0, 1] out each.

A filter only scores; the screen decides (threshold per filter) and fails closed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

TextFilter = Callable[[Sequence[str]], Sequence[float]]

# e-mail addresses and phone numbers in the common written forms (issue-level PII screen;
# deeper detection lives in later filters)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_PHONE = re.compile(r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{3}\)\s?|\b\d{3}[\s.-])?\d{3}[\s.-]\d{4}\b")


def pii_filter(texts: Sequence[str]) -> list[float]:
    """1.0 when a text contains an e-mail address or a phone number, else 0.0."""
    return [1.0 if (_EMAIL.search(t) or _PHONE.search(t)) else 0.0 for t in texts]


def profanity_filter(texts: Sequence[str]) -> list[float]:
    """Probability of offensive language from alt-profanity-check (a linear SVM, fast)."""
    from profanity_check import predict_prob

    if not texts:
        return []
    return [float(p) for p in predict_prob(list(texts))]

"""Content filters as plain callables: a batch of texts in, one risk score in [0, 1] out each.

A filter only scores; the screen decides (a threshold and an action per filter) and fails
closed. The built-in ones live in their own modules; these names are the short way to use
them as plug-ins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

TextFilter = Callable[[Sequence[str]], Sequence[float]]


def pii_filter(texts: Sequence[str]) -> list[float]:
    """1.0 when a text holds personal data or a secret (see `guarded_rl.safety.pii`)."""
    from guarded_rl.safety.pii import pii_scores

    return pii_scores(texts)


def profanity_filter(texts: Sequence[str]) -> list[float]:
    """Probability of offensive language from alt-profanity-check's shipped model."""
    from guarded_rl.safety.profanity import profanity_model

    return profanity_model()(texts)

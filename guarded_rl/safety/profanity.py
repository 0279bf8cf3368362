"""The default toxicity backend: alt-profanity-check's shipped model, scored fast.

alt-profanity-check ships a TF-IDF vectorizer (word unigrams, English stop words, l2 norm) and a
sigmoid-calibrated ensemble of 5 linear SVMs; it works offline. Its `predict_prob` builds sparse
matrices and loops over rows in Python, with a large fixed cost per call. A linear model over
l2-normalised TF-IDF needs only, per text, the vocabulary terms it contains: here each term maps
to its idf and its 5 SVM weights, and the same Platt calibrations are applied. The result equals
sklearn's probabilities (tested to 1e-9) at several times the speed. If the shipped vectorizer
ever has other settings, the sklearn path is used instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np


class ProfanityModel:
    """Probability that a text is offensive, from the shipped alt-profanity-check model."""

    def __init__(self) -> None:
        from profanity_check import profanity_check as shipped

        self.vectorizer = shipped.vectorizer
        self.model = shipped.model
        members = self.model.calibrated_classifiers_
        self._coef = np.stack([m.estimator.coef_.ravel() for m in members], axis=1)
        self._intercept = np.array([float(np.ravel(m.estimator.intercept_)[0]) for m in members])
        self._a = np.array([float(m.calibrators[0].a_) for m in members])
        self._b = np.array([float(m.calibrators[0].b_) for m in members])
        self._fast = _fast_path_applies(self.vectorizer)
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        #: words known to be words: the model's vocabulary and the stop words it drops
        self.vocabulary: frozenset[str] = frozenset(self.vectorizer.vocabulary_) | frozenset(
            ENGLISH_STOP_WORDS
        )
        if self._fast:
            import re

            from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

            idf = self.vectorizer.idf_
            self._terms = {
                term: (float(idf[i]), tuple(float(w) for w in self._coef[i]))
                for term, i in self.vectorizer.vocabulary_.items()
                if term not in ENGLISH_STOP_WORDS
            }
            self._tokens = re.compile(self.vectorizer.token_pattern).findall
            self._members = list(
                zip(self._intercept.tolist(), self._a.tolist(), self._b.tolist(), strict=True)
            )

    def __call__(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        if self._fast:
            return [self._one(t) for t in texts]
        features = self.vectorizer.transform(list(texts))
        decision = features @ self._coef + self._intercept  # one column per ensemble member
        calibrated = 1.0 / (1.0 + np.exp(self._a * decision + self._b))  # Platt: expit(-(aT+b))
        return [float(p) for p in calibrated.mean(axis=1)]

    def _one(self, text: str) -> float:
        counts: dict[str, int] = {}
        for token in self._tokens(text.lower()):
            if token in self._terms:
                counts[token] = counts.get(token, 0) + 1
        k = len(self._members)
        sums = [0.0] * k
        norm_sq = 0.0
        for term, count in counts.items():
            idf, weights = self._terms[term]
            value = count * idf
            norm_sq += value * value
            for j in range(k):
                sums[j] += value * weights[j]
        scale = 1.0 / math.sqrt(norm_sq) if norm_sq > 0 else 0.0
        total = 0.0
        for j, (intercept, a, b) in enumerate(self._members):
            total += 1.0 / (1.0 + math.exp(a * (sums[j] * scale + intercept) + b))
        return total / k

    def reference(self, texts: Sequence[str]) -> list[float]:
        """The same probabilities through sklearn's own (slow) path, for tests."""
        return [float(p) for p in self.model.predict_proba(self.vectorizer.transform(texts))[:, 1]]


@lru_cache(maxsize=1)
def profanity_model() -> ProfanityModel:
    """Loaded once per process (the model is read from disk on first use)."""
    return ProfanityModel()


def _fast_path_applies(vectorizer: Any) -> bool:
    """Only for the settings the fast path reproduces exactly."""
    params = vectorizer.get_params()
    expected = {
        "analyzer": "word",
        "binary": False,
        "lowercase": True,
        "ngram_range": (1, 1),
        "norm": "l2",
        "preprocessor": None,
        "stop_words": "english",
        "strip_accents": None,
        "sublinear_tf": False,
        "tokenizer": None,
        "use_idf": True,
    }
    return all(params.get(k) == v for k, v in expected.items())

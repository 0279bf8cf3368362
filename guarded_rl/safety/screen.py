"""The content-safety stage: every generated output is screened before anyone sees it.

Each backend scores a batch of texts; the policy's rule for that backend turns a score into an
action, and the most severe action wins: block > escalate > redact > allow. Classifier
backends see the normalized text (evasions folded), the PII backend sees the original text
(what would be shown). Blocked output is never shown and enters training with the penalty;
escalated output is held for a person and neither shown nor trained on; redacted output is
shown with its personal data replaced by typed placeholders.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from guarded_rl.errors import GuardBlockedError, PolicyError
from guarded_rl.policy import SafetyPolicy
from guarded_rl.records import Action, Sample, Verdict
from guarded_rl.safety.code_allow import require_allowed, require_safe_function
from guarded_rl.safety.filters import TextFilter
from guarded_rl.safety.safe_phrases import SafePhrases, builtin_safe_phrases, without_safe_phrases

SEVERITY: dict[Action, int] = {"allow": 0, "redact": 1, "escalate": 2, "block": 3}


class SafetyScreen(Protocol):
    """Decides, for each sample, whether it may be shown (and in which form)."""

    def screen(self, samples: Sequence[Sample]) -> list[Verdict]: ...


@dataclass(frozen=True, slots=True)
class Backend:
    """A scorer and the rule that turns its score into an action."""

    score: TextFilter
    threshold: float
    action: Action = "block"
    sees: Literal["normalized", "original"] = "normalized"
    escalate_from: float | None = None  # scores in [escalate_from, threshold) escalate


class FilterScreen:
    """Runs every backend on a batch; fails closed.

    With no backends it refuses to exist. A backend that raises, returns the wrong number of
    scores, a non-number or NaN gives `on_error` (block unless the policy says escalate) to
    every sample, with the reason `<name>:error:<Exception>`.
    """

    def __init__(
        self,
        backends: Mapping[str, Backend | tuple[TextFilter, float]],
        *,
        on_error: Action = "block",
        redactor: Callable[[str], str] | None = None,
        normalizer: Callable[[str], str] | None = None,
    ) -> None:
        if not backends:
            raise GuardBlockedError(
                "no safety filters configured; refusing to screen nothing",
                field="safety.filters",
                got=[],
                expected="at least one filter",
            )
        if on_error not in ("block", "escalate"):
            raise GuardBlockedError(
                "a failing safety backend must block or escalate",
                field="safety.on_backend_error",
                got=on_error,
                expected="block or escalate",
            )
        self.backends = {
            name: b if isinstance(b, Backend) else Backend(b[0], b[1], sees="original")
            for name, b in backends.items()
        }
        self.on_error: Action = on_error
        self.redactor = redactor
        self.normalizer = normalizer

    def screen(self, samples: Sequence[Sample]) -> list[Verdict]:
        originals = [f"{s.prompt} {s.text}".strip() for s in samples]
        normalized: list[str] | None = None
        actions: list[Action] = ["allow"] * len(samples)
        reasons: list[list[str]] = [[] for _ in samples]
        scores: list[dict[str, float]] = [{} for _ in samples]

        def escalate(i: int, action: Action) -> None:
            if SEVERITY[action] > SEVERITY[actions[i]]:
                actions[i] = action

        for name, backend in self.backends.items():
            if backend.sees == "normalized" and normalized is None:
                normalize = self.normalizer or _default_normalizer()
                normalized = [normalize(t) for t in originals]
            texts = normalized if backend.sees == "normalized" and normalized else originals
            try:
                values = [float(v) for v in backend.score(texts)]  # non-numbers fail too
                if len(values) != len(texts):
                    raise ValueError(f"returned {len(values)} scores for {len(texts)} texts")
            except Exception as exc:  # a broken backend must block, never pass
                for i in range(len(samples)):
                    reasons[i].append(f"{name}:error:{type(exc).__name__}")
                    escalate(i, self.on_error)
                continue
            for i, value in enumerate(values):
                scores[i][name] = round(value, 4)
                if not value < backend.threshold:  # NaN counts as a hit
                    reasons[i].append(name)
                    escalate(i, backend.action)
                elif backend.escalate_from is not None and value >= backend.escalate_from:
                    reasons[i].append(f"{name}:borderline")
                    escalate(i, "escalate")
        verdicts = []
        for s, action, r, sc in zip(samples, actions, reasons, scores, strict=True):
            redacted = None
            if action == "redact":
                redactor = self.redactor or _default_redactor()
                redacted = redactor(s.text)
            verdicts.append(Verdict(s.sample_id, action, tuple(r), sc, redacted))
        return verdicts


def shown_form(sample: Sample, verdict: Verdict) -> Sample:
    """The sample as a person may see it: redacted where the verdict says so."""
    if verdict.action == "redact" and verdict.redacted is not None:
        return replace(sample, text=verdict.redacted)
    return sample


def _default_normalizer() -> Callable[[str], str]:
    from guarded_rl.safety.normalize import normalize

    return normalize


def _default_redactor() -> Callable[[str], str]:
    from guarded_rl.safety.pii import redact

    return redact


def screen_from_policy(policy: SafetyPolicy) -> FilterScreen:
    """The default screen: the backends a policy names, with its rules."""
    backends: dict[str, Backend] = {}
    for name in policy.filters:
        if name == "profanity":
            from guarded_rl.safety.profanity import profanity_model

            backends[name] = Backend(
                profanity_model(),
                policy.profanity_threshold,
                "block",
                escalate_from=policy.escalate_threshold,
            )
        elif name == "pii":
            from guarded_rl.safety.pii import pii_scores

            backends[name] = Backend(pii_scores, 0.5, policy.pii_action, sees="original")
        elif name == "blocklist":
            from guarded_rl.safety.blocklist import Blocklist

            backends[name] = Backend(Blocklist(policy.blocklist), 0.5, "block")
        elif name == "threat":
            from guarded_rl.safety.threat import threat_scores

            backends[name] = Backend(threat_scores, 0.5, "block")
        elif name == "detoxify":
            backends[name] = Backend(_detoxify(policy), 1.0, "block")
        else:
            custom = policy.custom[name]
            backends[name] = Backend(
                _per_text(load_callable(custom.callable, f"safety.custom.{name}.callable")),
                custom.threshold,
                custom.action,
            )
    phrases = _safe_phrases(policy)
    if phrases is not None:
        for name in ("profanity", "detoxify"):
            if name in backends:
                backends[name] = replace(
                    backends[name], score=without_safe_phrases(backends[name].score, phrases)
                )
    normalizer = None
    if "profanity" in backends:
        from guarded_rl.safety.profanity import profanity_model

        normalizer = VocabularyNormalizer(profanity_model().vocabulary)
    return FilterScreen(backends, on_error=policy.on_backend_error, normalizer=normalizer)


def _safe_phrases(policy: SafetyPolicy) -> SafePhrases | None:
    phrases = [p for p in policy.safe_phrases if p.strip()]
    if policy.builtin_safe_phrases:
        phrases = [*builtin_safe_phrases(), *phrases]
    return SafePhrases(phrases) if phrases else None


_ARTICLE_JOINED = re.compile(r"\b[ai][a-z]{3,}\b")
# "a" or "i", then a spelled-out word: single characters with separators between them
_ARTICLE_THEN_SPELLED = re.compile(r"\b[aAiI][\s.\-_*]+(?:\S[\s.\-_*]+){2,}\S\b")


class VocabularyNormalizer:
    """`normalize`, then one repair that needs a vocabulary: a spelled-out word joined with the
    article before it ("is a s t u p i d" → "astupid") is split again ("a stupid") when only
    the rest is a known word. Texts without such a spelled-out run are left as normalized."""

    def __init__(self, vocabulary: Container[str]) -> None:
        from guarded_rl.safety.normalize import normalize

        self._normalize = normalize
        self._vocabulary = vocabulary

    def __call__(self, text: str) -> str:
        normalized = self._normalize(text)
        if not _ARTICLE_THEN_SPELLED.search(text):  # only joins of spelled-out letters
            return normalized
        return _ARTICLE_JOINED.sub(self._split, normalized)

    def _split(self, match: re.Match[str]) -> str:
        word = match.group(0)
        if word in self._vocabulary or word[1:] not in self._vocabulary:
            return word
        return f"{word[0]} {word[1:]}"


def _detoxify(policy: SafetyPolicy) -> TextFilter:
    """Detoxify scores as one number per text: the largest score/threshold ratio, capped at 1,
    so a text blocks when any category reaches its own threshold."""
    from guarded_rl.safety.detoxify_backend import DetoxifyBackend

    settings = policy.detoxify
    backend = DetoxifyBackend(
        model_type=settings.model_type,
        checkpoint=settings.checkpoint,
        huggingface_config_path=settings.huggingface_config_path,
        thresholds=settings.thresholds or None,
    )
    thresholds = backend.thresholds

    def score(texts: Sequence[str]) -> list[float]:
        default = thresholds.get("toxicity", 0.5)
        return [
            min(1.0, max(v / max(thresholds.get(c, default), 1e-9) for c, v in s.items()))
            for s in backend.scores(texts)
        ]

    return score


def _per_text(fn: Callable[[str], float]) -> TextFilter:
    def score(texts: Sequence[str]) -> list[float]:
        return [float(fn(t)) for t in texts]

    return score


def load_callable(spec: str, field: str) -> Callable[[str], float]:
    """`package.module:function` → the function; a one-line `PolicyError` otherwise."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise PolicyError(
            "not a callable spec", field=field, got=spec, expected="'package.module:function'"
        )
    require_allowed(spec, field=field)  # nothing is imported that the user did not allow
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise PolicyError(f"cannot import: {exc}", field=field, got=spec) from None
    require_safe_function(fn, spec=spec, field=field)
    if not callable(fn):
        raise PolicyError(
            "not callable", field=field, got=spec, expected="a function text -> score"
        )
    return fn

"""Detoxify as a content-safety backend: loaded once, scored in batches, one score per category.

Wraps the real `detoxify.Detoxify`. Offline, give it a local checkpoint and a directory with the
Hugging Face config and tokenizer files (`guarded_rl.safety.detoxify_local.build_local_checkpoint`
writes a tiny one); any loading failure becomes a one-line `ModelLoadError`.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from guarded_rl.errors import InputError, ModelLoadError

#: Per-category thresholds: a category at or above its threshold is a reason to block. Classes
#: not listed use the "toxicity" threshold.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "toxicity": 0.5,
    "severe_toxicity": 0.3,
    "obscene": 0.5,
    "threat": 0.4,
    "insult": 0.5,
    "identity_attack": 0.4,
}

_OFFLINE_HINT = (
    "checkpoint=<local .ckpt> and huggingface_config_path=<dir with config.json and tokenizer "
    "files> for offline use, whose arch model_type also resolves offline "
    "(guarded_rl.safety.detoxify_local.build_local_checkpoint writes such a pair)"
)


def _offline() -> bool:
    """Whether the Hugging Face hub is switched off, by environment or by huggingface_hub."""
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    if any(f.strip().upper() in {"1", "ON", "YES", "TRUE"} for f in flags):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - transformers depends on it
        return False
    return bool(constants.HF_HUB_OFFLINE)


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No progress bars, advice or warnings from transformers while loading; restored after."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class DetoxifyBackend:
    """Loaded once, used batched; scores per category; reasons = categories over threshold.

    `backend(texts)` is a plain text filter (the highest category score per text, in [0, 1]);
    `scores` gives every category and `reasons` applies the per-category thresholds.
    """

    def __init__(
        self,
        *,
        model_type: str = "original",
        checkpoint: str | os.PathLike[str] | None = None,
        huggingface_config_path: str | os.PathLike[str] | None = None,
        thresholds: Mapping[str, float] | None = None,
        batch_size: int = 64,
        device: str = "cpu",
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(
                "batch size must be a positive integer",
                field="batch_size",
                got=batch_size,
                expected="an integer >= 1",
            )
        merged = dict(DEFAULT_THRESHOLDS)
        for name, value in (thresholds or {}).items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise InputError(
                    "threshold must be a number >= 0",
                    field=f"thresholds.{name}",
                    got=value,
                    expected="e.g. 0.5 (a score at or above it is a reason to block)",
                )
            merged[name] = float(value)
        self.thresholds: dict[str, float] = merged
        self.batch_size = batch_size
        self.model_type = model_type
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.huggingface_config_path = (
            None if huggingface_config_path is None else str(huggingface_config_path)
        )
        self.model = self._load(device)
        self.class_names: list[str] = list(self.model.class_names)

    def _fail(self, why: str) -> ModelLoadError:
        return ModelLoadError(
            f"cannot load Detoxify (model_type={self.model_type!r}, "
            f"checkpoint={self.checkpoint!r}): {why}",
            expected=_OFFLINE_HINT,
        )

    def _check_inputs(self) -> None:
        """Fail fast, without touching the network, on what can be seen from here."""
        if self.checkpoint is not None:
            if not Path(self.checkpoint).is_file():
                raise self._fail("checkpoint file not found")
        else:
            import torch.hub
            from detoxify.detoxify import MODEL_URLS

            if self.model_type not in MODEL_URLS:
                raise self._fail(f"unknown model_type; known: {', '.join(MODEL_URLS)}")
            name = os.path.basename(MODEL_URLS[self.model_type])
            cached = Path(torch.hub.get_dir()) / "checkpoints" / name
            if not cached.is_file() and _offline():
                raise self._fail(f"{name} is not in the torch hub cache and downloads are off")
        if self.huggingface_config_path is not None:
            config_dir = Path(self.huggingface_config_path)
            if not (config_dir / "config.json").is_file():
                raise self._fail(
                    f"huggingface_config_path {self.huggingface_config_path!r} has no config.json"
                )

    def _load(self, device: str) -> Any:
        self._check_inputs()
        try:
            with _quiet_transformers():
                import detoxify

                return detoxify.Detoxify(
                    model_type=self.model_type,
                    checkpoint=self.checkpoint,
                    device=device,
                    huggingface_config_path=self.huggingface_config_path,
                )
        except Exception as exc:  # any loading failure is the user's to fix, in one line
            raise self._fail(_first_line(exc)) from exc

    def threshold(self, category: str) -> float:
        """The threshold for `category` ("toxicity"'s when it has none of its own)."""
        return self.thresholds.get(category, self.thresholds["toxicity"])

    def scores(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """For each text, every category's probability (sigmoid), in batches of `batch_size`."""
        if isinstance(texts, str):
            raise TypeError("scores() takes a sequence of texts, not one string")
        items = list(texts)
        out: list[dict[str, float]] = []
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            raw = self.model.predict(chunk)
            # Detoxify squeezes a batch of one to a bare float per class
            columns = {k: v if isinstance(v, list) else [v] for k, v in raw.items()}
            out.extend(
                {name: float(columns[name][i]) for name in self.class_names}
                for i in range(len(chunk))
            )
        return out

    def __call__(self, texts: Sequence[str]) -> list[float]:
        """The highest category score per text (NaN if any is NaN): a plain text filter."""
        return [
            math.nan if any(math.isnan(v) for v in row.values()) else max(row.values(), default=0.0)
            for row in self.scores(texts)
        ]

    def reasons(self, scores: Mapping[str, float]) -> list[str]:
        """The categories whose score is at or above their threshold (NaN counts as a hit)."""
        return [
            name
            for name, value in scores.items()
            if math.isnan(value) or value >= self.threshold(name)
        ]

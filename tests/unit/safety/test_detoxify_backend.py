"""The Detoxify backend: the real `detoxify.Detoxify` loading a locally built checkpoint offline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers / huggingface_hub import

import math
from pathlib import Path

import detoxify
import huggingface_hub.constants
import pytest
import torch

from guarded_rl.errors import InputError, ModelLoadError
from guarded_rl.safety.detoxify_backend import DEFAULT_THRESHOLDS, DetoxifyBackend
from guarded_rl.safety.detoxify_local import DEFAULT_CLASSES, build_local_checkpoint

TEXTS = [
    "have a nice day",
    "you are an idiot",
    "i will kill you",
    "thanks for the helpful story",
    "Ünïcode, emoji 🙂 and words the tokenizer has never seen",
    "",
]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No hub, and an empty torch hub cache, for every test here."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


@pytest.fixture(scope="module")
def local_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_local_checkpoint(tmp_path_factory.mktemp("detoxify"), seed=3)


@pytest.fixture(scope="module")
def backend(local_ckpt: tuple[Path, Path]) -> DetoxifyBackend:
    ckpt, hf_dir = local_ckpt
    return DetoxifyBackend(checkpoint=ckpt, huggingface_config_path=hf_dir)


def test_checkpoint_has_the_shape_detoxify_reads(local_ckpt: tuple[Path, Path]) -> None:
    ckpt, hf_dir = local_ckpt
    loaded = torch.load(ckpt, map_location="cpu", weights_only=False)
    args = loaded["config"]["arch"]["args"]
    assert set(args) == {"model_type", "model_name", "tokenizer_name", "num_classes"}
    assert args["num_classes"] == len(DEFAULT_CLASSES)
    assert loaded["config"]["dataset"]["args"]["classes"] == list(DEFAULT_CLASSES)
    assert (hf_dir / "config.json").is_file()
    assert (hf_dir / "tokenizer.json").is_file()


def test_loads_through_the_real_detoxify_class_with_the_saved_weights(
    local_ckpt: tuple[Path, Path], backend: DetoxifyBackend
) -> None:
    assert isinstance(backend.model, detoxify.Detoxify)
    assert backend.class_names == list(DEFAULT_CLASSES)
    saved = torch.load(local_ckpt[0], map_location="cpu", weights_only=False)["state_dict"]
    live = backend.model.model.state_dict()
    assert all(torch.equal(live[k], v) for k, v in saved.items())  # nothing re-initialised


def test_loading_is_quiet(local_ckpt: tuple[Path, Path], capfd: pytest.CaptureFixture) -> None:
    DetoxifyBackend(checkpoint=local_ckpt[0], huggingface_config_path=local_ckpt[1])
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_scores_one_dict_per_text_every_class_in_unit_range(backend: DetoxifyBackend) -> None:
    rows = backend.scores(TEXTS)
    assert len(rows) == len(TEXTS)
    for row in rows:
        assert list(row) == list(DEFAULT_CLASSES)
        assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in row.values())
    assert backend.scores([]) == []
    assert len(backend.scores(["just one"])) == 1  # Detoxify squeezes a batch of one
    with pytest.raises(TypeError):
        backend.scores("not a list")


def test_scores_are_deterministic_and_independent_of_batching(
    local_ckpt: tuple[Path, Path], backend: DetoxifyBackend
) -> None:
    first = backend.scores(TEXTS)
    assert backend.scores(TEXTS) == first
    small = DetoxifyBackend(
        checkpoint=local_ckpt[0], huggingface_config_path=local_ckpt[1], batch_size=2
    )
    for a, b in zip(small.scores(TEXTS), first, strict=True):
        assert a == pytest.approx(b, abs=1e-5)
    again = build_local_checkpoint(local_ckpt[0].parent / "again", seed=3)
    rebuilt = DetoxifyBackend(checkpoint=again[0], huggingface_config_path=again[1])
    assert rebuilt.scores(TEXTS) == first  # same seed, same model


def test_call_is_the_highest_category_score(backend: DetoxifyBackend) -> None:
    assert backend(TEXTS) == [max(row.values()) for row in backend.scores(TEXTS)]


def test_reasons_follow_the_thresholds(local_ckpt: tuple[Path, Path]) -> None:
    ckpt, hf_dir = local_ckpt
    everything = DetoxifyBackend(
        checkpoint=ckpt,
        huggingface_config_path=hf_dir,
        thresholds=dict.fromkeys(DEFAULT_CLASSES, 0.0),
    )
    nothing = DetoxifyBackend(
        checkpoint=ckpt,
        huggingface_config_path=hf_dir,
        thresholds=dict.fromkeys(DEFAULT_CLASSES, 1.01),
    )
    for row in everything.scores(TEXTS):
        assert everything.reasons(row) == list(DEFAULT_CLASSES)
        assert nothing.reasons(row) == []


def test_reasons_per_category_and_fallback_to_toxicity(backend: DetoxifyBackend) -> None:
    assert backend.thresholds == DEFAULT_THRESHOLDS
    row = {"toxicity": 0.45, "threat": 0.45, "insult": 0.5, "sexual_explicit": 0.5}
    assert backend.reasons(row) == ["threat", "insult", "sexual_explicit"]
    assert backend.reasons({"sexual_explicit": 0.49}) == []  # uses toxicity's 0.5
    assert backend.reasons({"toxicity": math.nan}) == ["toxicity"]  # NaN fails closed


def test_bad_settings_are_input_errors(local_ckpt: tuple[Path, Path]) -> None:
    with pytest.raises(InputError, match=r"thresholds\.threat"):
        DetoxifyBackend(checkpoint=local_ckpt[0], thresholds={"threat": -1})
    with pytest.raises(InputError, match="batch_size"):
        DetoxifyBackend(checkpoint=local_ckpt[0], batch_size=0)


def _assert_one_line_load_error(info: pytest.ExceptionInfo[ModelLoadError], *words: str) -> None:
    message = str(info.value)
    assert "\n" not in message
    assert "huggingface_config_path" in message  # says how to load offline
    for word in words:
        assert word in message


def test_missing_checkpoint_is_a_load_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.ckpt"
    with pytest.raises(ModelLoadError) as info:
        DetoxifyBackend(checkpoint=missing)
    _assert_one_line_load_error(info, str(missing), "not found")


def test_missing_config_dir_is_a_load_error(local_ckpt: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        DetoxifyBackend(checkpoint=local_ckpt[0], huggingface_config_path=tmp_path / "absent")
    _assert_one_line_load_error(info, "config.json")


def test_hub_model_types_fail_fast_offline() -> None:
    with pytest.raises(ModelLoadError) as info:
        DetoxifyBackend(model_type="original")  # would download from GitHub and the hub
    _assert_one_line_load_error(info, "'original'", "torch hub cache")
    with pytest.raises(ModelLoadError) as info:
        DetoxifyBackend(model_type="no-such-type")
    _assert_one_line_load_error(info, "unknown model_type")


def test_checkpoint_naming_a_hub_model_fails_offline(
    local_ckpt: tuple[Path, Path], tmp_path: Path
) -> None:
    loaded = torch.load(local_ckpt[0], map_location="cpu", weights_only=False)
    loaded["config"]["arch"]["args"]["model_type"] = "guarded-rl-test/not-a-cached-model"
    hubbed = tmp_path / "hub.ckpt"
    torch.save(loaded, hubbed)
    with pytest.raises(ModelLoadError) as info:
        DetoxifyBackend(checkpoint=hubbed, huggingface_config_path=local_ckpt[1])
    _assert_one_line_load_error(info, str(hubbed))


def test_a_corrupt_checkpoint_is_a_load_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError) as info:
        DetoxifyBackend(checkpoint=bad)
    _assert_one_line_load_error(info, str(bad))


def test_a_short_fit_makes_scores_meaningful(tmp_path: Path) -> None:
    ckpt, hf_dir = build_local_checkpoint(tmp_path, seed=0, train_steps=60)
    backend = DetoxifyBackend(checkpoint=ckpt, huggingface_config_path=hf_dir)
    benign, insult, threat = backend.scores(
        ["have a nice day", "you are an idiot", "i will kill you"]
    )
    assert insult["toxicity"] > 0.5 > benign["toxicity"]
    assert "threat" in backend.reasons(threat) or threat["threat"] > benign["threat"]
    assert backend.reasons(benign) == []

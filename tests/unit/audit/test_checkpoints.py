"""Content-addressed checkpoints: the file name is the weights' commitment, and is verified."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from guarded_rl.audit.checkpoints import CheckpointStore
from guarded_rl.errors import AuditError
from guarded_rl.weights import load_state, module_sha256, state_of, state_sha256


def _state(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(3, 4, generator=gen), "b": torch.randn(4, generator=gen)}


def test_name_is_the_state_hash_and_load_round_trips(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ckpt")
    state = _state()
    digest = store.save(state)
    assert digest == state_sha256(state)
    assert store.path_for(digest) == tmp_path / "ckpt" / f"{digest}.safetensors"
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == [f"{digest}.safetensors"]
    loaded = store.load(digest)
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_saving_twice_keeps_one_file(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    first = store.save(_state())
    second = store.save({k: v.clone() for k, v in _state().items()}, first)
    third = store.save(_state(1))
    assert first == second != third
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{first}.safetensors", f"{third}.safetensors"]
    )


def test_tied_model_checkpoint_round_trips(
    fresh_lm: tuple[nn.Module, object], tmp_path: Path
) -> None:
    model, _ = fresh_lm
    store = CheckpointStore(tmp_path)
    digest = store.save(state_of(model), module_sha256(model))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    load_state(model, store.load(digest))
    assert module_sha256(model) == digest


def test_tampered_file_raises(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    digest = store.save(_state())
    path = store.path_for(digest)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # flip one bit of the last weight
    path.write_bytes(bytes(data))
    with pytest.raises(AuditError) as info:
        store.load(digest)
    assert str(path) in info.value.one_line()
    assert "does not match" in info.value.one_line()


def test_swapped_weights_under_the_name_raise(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    digest = store.save(_state(0))
    save_file(_state(1), str(store.path_for(digest)))
    with pytest.raises(AuditError, match="does not match"):
        store.load(digest)


def test_missing_checkpoint_raises(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    with pytest.raises(AuditError, match="checkpoint missing"):
        store.load("0" * 64)


def test_store_creates_its_directory(tmp_path: Path) -> None:
    CheckpointStore(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()

"""Per-tensor content-addressed checkpoints: exact round trips, dedupe, tamper evidence."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from guarded_rl.audit.checkpoints import CheckpointStore
from guarded_rl.errors import AuditError
from guarded_rl.weights import load_state, state_of, state_sha256, tensor_sha256

DTYPES = [
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.float64,
    torch.int64,
    torch.int32,
    torch.uint8,
    torch.bool,
]


def _state(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "w": torch.randn(3, 4, generator=gen),
        "b": torch.randn(4, generator=gen),
        "emb": torch.randn(5, 2, generator=gen),
    }


def _tiny_gpt2(seed: int) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=50, n_positions=16, n_embd=8, n_layer=1, n_head=2)
    return GPT2LMHeadModel(config).eval()  # eval: no dropout, so steps are deterministic


def _step(model: GPT2LMHeadModel, optimizer: torch.optim.Optimizer, seed: int) -> None:
    ids = torch.randint(0, 50, (2, 8), generator=torch.Generator().manual_seed(seed))
    optimizer.zero_grad()
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()


def _assert_same(got: Any, want: Any) -> None:
    """Exact structural equality: types (int keys stay ints, tuples stay tuples) and bits."""
    assert type(got) is type(want), (got, want)
    if isinstance(want, torch.Tensor):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert tensor_sha256(got) == tensor_sha256(want)
    elif isinstance(want, dict):
        assert list(got) == list(want)
        assert [type(k) for k in got] == [type(k) for k in want]
        for key in want:
            _assert_same(got[key], want[key])
    elif isinstance(want, list | tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            _assert_same(g, w)
    elif isinstance(want, float) and math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == want


def _files(root: Path) -> dict[str, tuple[int, int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
        for p in root.rglob("*")
        if p.is_file()
    }


def test_store_creates_its_layout(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "a" / "ckpt")
    assert (tmp_path / "a" / "ckpt" / "blobs").is_dir()
    assert (tmp_path / "a" / "ckpt" / "manifests").is_dir()
    assert store.stored_bytes() == 0


def test_gpt2_and_adamw_round_trip_and_resume_identically(tmp_path: Path) -> None:
    model = _tiny_gpt2(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    _step(model, optimizer, 1)
    _step(model, optimizer, 2)
    state, opt_state = state_of(model, clone=True), optimizer.state_dict()

    store = CheckpointStore(tmp_path)
    checkpoint_id = store.save(state, opt_state)
    loaded, loaded_opt = store.load(checkpoint_id)

    assert list(loaded) == sorted(state)  # names come back sorted (canonical JSON)
    for name, tensor in state.items():
        assert torch.equal(loaded[name], tensor)
        assert tensor_sha256(loaded[name]) == tensor_sha256(tensor)
    assert state_sha256(loaded) == state_sha256(state) == store.model_sha256(checkpoint_id)
    assert loaded_opt is not None
    _assert_same(loaded_opt, opt_state)
    assert loaded_opt["state"][0]["step"].dim() == 0  # 0-dim step tensors survive
    _assert_same(store.load_model(checkpoint_id), loaded)

    fresh = _tiny_gpt2(99)
    assert state_sha256(state_of(fresh)) != state_sha256(state)
    load_state(fresh, loaded)
    fresh_optimizer = torch.optim.AdamW(fresh.parameters())
    fresh_optimizer.load_state_dict(loaded_opt)
    _step(model, optimizer, 3)
    _step(fresh, fresh_optimizer, 3)
    assert state_sha256(state_of(model)) != state_sha256(state)
    assert state_sha256(state_of(fresh)) == state_sha256(state_of(model))


def test_model_sha256_is_the_state_commitment(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    state = _state()
    checkpoint_id = store.save(state)
    assert store.model_sha256(checkpoint_id) == state_sha256(state)
    manifest = store.manifest(checkpoint_id)
    assert manifest["model_sha256"] == state_sha256(state)
    assert manifest["optimizer"] is None
    assert manifest["model"]["w"] == {
        "sha256": tensor_sha256(state["w"]),
        "dtype": "float32",
        "shape": [3, 4],
    }
    raw = store.manifest_path(checkpoint_id).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == checkpoint_id
    assert raw == json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    assert store.load(checkpoint_id)[1] is None


def test_one_changed_tensor_adds_exactly_one_blob(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    first = _state()
    store.save(first)
    blobs_before = {p.name for p in store.blobs_dir.iterdir()}
    bytes_before = store.stored_bytes()

    second = dict(first, w=first["w"] + 1.0)
    checkpoint_id = store.save(second)

    new_blobs = {p.name for p in store.blobs_dir.iterdir()} - blobs_before
    assert new_blobs == {tensor_sha256(second["w"])}
    manifest_size = store.manifest_path(checkpoint_id).stat().st_size
    w_bytes = second["w"].numel() * second["w"].element_size()
    assert store.stored_bytes() - bytes_before == w_bytes + manifest_size


def test_equal_tensors_in_one_checkpoint_share_a_blob(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.save({"a": torch.zeros(4), "b": torch.zeros(4), "c": torch.zeros(2, 2)})
    assert len(list(store.blobs_dir.iterdir())) == 2  # same bytes, other shape: other blob


def test_same_state_twice_is_the_same_checkpoint_and_writes_nothing(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    state = _state()
    first = store.save(state)
    before = _files(tmp_path)
    reordered = {name: state[name].clone() for name in reversed(list(state))}
    assert store.save(reordered) == first
    assert _files(tmp_path) == before
    assert store.exists(first)


def test_flipped_blob_byte_is_caught_naming_the_blob(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    state = _state()
    checkpoint_id = store.save(state)
    blob = store.blob_path(tensor_sha256(state["b"]))
    data = bytearray(blob.read_bytes())
    data[0] ^= 0x01
    blob.write_bytes(bytes(data))
    for call in (store.load, store.verify, store.load_model):
        with pytest.raises(AuditError, match="does not match its hash") as info:
            call(checkpoint_id)
        assert info.value.file == str(blob)
        assert str(blob) in info.value.one_line()


def test_truncated_blob_is_caught(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    state = _state()
    checkpoint_id = store.save(state)
    blob = store.blob_path(tensor_sha256(state["w"]))
    blob.write_bytes(blob.read_bytes()[:-4])
    with pytest.raises(AuditError, match="does not match"):
        store.verify(checkpoint_id)


def test_deleted_blob_is_caught(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    state = _state()
    checkpoint_id = store.save(state)
    blob = store.blob_path(tensor_sha256(state["emb"]))
    blob.unlink()
    for call in (store.load, store.verify):
        with pytest.raises(AuditError, match="blob missing") as info:
            call(checkpoint_id)
        assert info.value.file == str(blob)


def test_deleted_optimizer_blob_fails_load_not_load_model(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    moment = torch.full((3,), 7.0)
    checkpoint_id = store.save(_state(), {"state": {0: {"exp_avg": moment}}, "param_groups": []})
    store.blob_path(tensor_sha256(moment)).unlink()
    store.load_model(checkpoint_id)
    with pytest.raises(AuditError, match="blob missing"):
        store.load(checkpoint_id)
    with pytest.raises(AuditError, match="blob missing"):
        store.verify(checkpoint_id)


def test_edited_manifest_is_caught_naming_the_manifest(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    checkpoint_id = store.save(_state())
    path = store.manifest_path(checkpoint_id)
    path.write_bytes(path.read_bytes().replace(b'"shape":[4]', b'"shape":[2,2]'))
    for call in (store.load, store.verify, store.manifest, store.model_sha256):
        with pytest.raises(AuditError, match="does not match its id") as info:
            call(checkpoint_id)
        assert info.value.file == str(path)


def test_forged_manifest_under_its_own_hash_is_caught(tmp_path: Path) -> None:
    """Even renamed to match, a manifest whose commitment disagrees with its tensors fails."""
    store = CheckpointStore(tmp_path)
    checkpoint_id = store.save(_state())
    manifest = store.manifest(checkpoint_id)
    manifest["model_sha256"] = state_sha256(_state(1))
    data = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    forged_id = hashlib.sha256(data).hexdigest()
    store.manifest_path(forged_id).write_bytes(data)
    with pytest.raises(AuditError, match="model_sha256 does not match") as info:
        store.load(forged_id)
    assert info.value.file == str(store.manifest_path(forged_id))


def test_unknown_and_malformed_ids(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    unknown = "0" * 64
    assert not store.exists(unknown)
    for call in (store.load, store.verify, store.manifest, store.load_model):
        with pytest.raises(AuditError, match="missing") as info:
            call(unknown)
        assert info.value.file == str(store.manifest_path(unknown))
    assert not store.exists("../../etc/passwd")
    with pytest.raises(AuditError, match="not a checkpoint hash"):
        store.load("../../etc/passwd")


def test_writes_leave_no_temp_files_and_manifest_comes_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CheckpointStore(tmp_path)
    replaced: list[Path] = []
    real_replace = os.replace

    def spy(src: str, dst: str | Path) -> None:
        replaced.append(Path(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    checkpoint_id = store.save(_state(), {"state": {0: {"m": torch.ones(2)}}, "param_groups": []})
    assert [p.parent for p in replaced[:-1]] == [store.blobs_dir] * 4
    assert replaced[-1] == store.manifest_path(checkpoint_id)
    assert list(tmp_path.rglob("*.tmp")) == []


def test_failed_manifest_write_leaves_no_temp_file_and_no_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CheckpointStore(tmp_path)
    real_replace = os.replace

    def fail_on_manifest(src: str, dst: str | Path) -> None:
        if Path(dst).parent == store.manifests_dir:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_manifest)
    with pytest.raises(AuditError, match="cannot write checkpoint file"):
        store.save(_state())
    assert list(tmp_path.rglob("*.tmp")) == []
    assert list(store.manifests_dir.iterdir()) == []
    assert len(list(store.blobs_dir.iterdir())) == 3  # blobs are durable, just unreferenced


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_dtype_round_trips_bit_identically(tmp_path: Path, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    if dtype.is_floating_point:
        matrix = torch.randn(3, 5, generator=gen, dtype=torch.float64).to(dtype)
        matrix[0, :3] = torch.tensor([float("nan"), -0.0, float("inf")], dtype=dtype)
    elif dtype == torch.bool:
        matrix = torch.rand(3, 5, generator=gen) > 0.5
    else:
        matrix = torch.randint(0, 200, (3, 5), generator=gen).to(dtype)
    state = {
        "matrix": matrix,
        "scalar": matrix[1, 1].clone(),  # 0-dim
        "empty": matrix[:0],  # shape (0, 5)
        "transposed": matrix.t(),  # not contiguous
    }
    store = CheckpointStore(tmp_path)
    checkpoint_id = store.save(state, {"state": {0: {"step": state["scalar"]}}})
    store.verify(checkpoint_id)
    loaded, optimizer = store.load(checkpoint_id)
    for name, tensor in state.items():
        _assert_same(loaded[name], tensor)
        got_bytes = loaded[name].reshape(-1).view(torch.uint8)
        assert torch.equal(got_bytes, tensor.contiguous().reshape(-1).view(torch.uint8))
    assert optimizer is not None
    _assert_same(optimizer, {"state": {0: {"step": state["scalar"]}}})
    assert store.model_sha256(checkpoint_id) == state_sha256(state)


def test_optimizer_tree_keeps_key_types_tuples_and_special_floats(tmp_path: Path) -> None:
    tree = {
        "state": {3: {"step": torch.tensor(2.0)}, 1: {}},
        "param_groups": [{"betas": (0.9, 0.999), "params": [3, 1], "fused": None, "x": True}],
        "odd": {"nan": float("nan"), "inf": float("inf"), "neg": -math.inf, "zero": -0.0},
        "nested": [[1, "a"], (2, (3,)), {(4, 5): "tuple key", None: 0, True: 1}],
    }
    store = CheckpointStore(tmp_path)
    _, loaded = store.load(store.save({}, tree))
    _assert_same(loaded, tree)
    assert math.copysign(1.0, loaded["odd"]["zero"]) == -1.0


def test_unstorable_values_are_rejected_before_writing(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    with pytest.raises(TypeError, match="complex"):
        store.save(_state(), {"state": {}, "bad": 1j})
    with pytest.raises(TypeError, match="complex64"):
        store.save({"z": torch.zeros(2, dtype=torch.complex64)})
    assert store.stored_bytes() == 0

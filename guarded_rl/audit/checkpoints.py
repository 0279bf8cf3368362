"""A per-tensor content-addressed checkpoint store.

Layout under the store directory:

    blobs/<sha256>                one file per distinct tensor: its raw (little-endian) bytes,
                                  named by `tensor_sha256` (dtype, shape and bytes)
    manifests/<checkpoint_id>.json  canonical JSON naming the blobs of one checkpoint;
                                  checkpoint_id is the SHA-256 of these exact bytes

A tensor that does not change between checkpoints is stored once, so a run that only tunes a
few tensors grows by those tensors, not by the whole model. Every file is named by its own
hash, so any change to a blob or manifest is caught on read, and the manifest also records
`model_sha256` (the commitment the audit log uses) so a checkpoint can be matched to an entry
without loading it.

Writes are atomic and durable (temp file, fsync, rename, fsync of the directory), existing
files are never rewritten, and a manifest is written only after every blob it names is
durable: a crash can leave unreferenced blobs behind, never a manifest naming a missing blob.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guarded_rl.atomic import atomic_write, fsync_dir
from guarded_rl.errors import AuditError
from guarded_rl.weights import State, state_sha256_from_tensor_hashes, tensor_sha256

if TYPE_CHECKING:  # verifying a checkpoint only hashes files: torch loads when tensors are built
    import torch

#: Version of the manifest layout; bump it when the layout changes.
FORMAT = 1

#: Dtypes a blob may hold, by the name the manifest uses, with their size in bytes.
_DTYPE_SIZES: dict[str, int] = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "int64": 8,
    "int32": 4,
    "int16": 2,
    "int8": 1,
    "uint8": 1,
    "bool": 1,
}


def _torch_dtype(name: str) -> torch.dtype:
    import torch

    dtype: torch.dtype = getattr(torch, name)  # names come from _DTYPE_SIZES only
    return dtype


def _dtype_name(dtype: torch.dtype) -> str | None:
    name = str(dtype).removeprefix("torch.")
    return name if name in _DTYPE_SIZES else None


_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

#: A tensor as the manifest names it: `{"sha256": ..., "dtype": ..., "shape": [...]}`.
TensorRef = dict[str, Any]


class CheckpointStore:
    """Checkpoints (model state plus optional optimizer state) stored as deduplicated blobs."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.blobs_dir = self.directory / "blobs"
        self.manifests_dir = self.directory / "manifests"
        for sub in (self.blobs_dir, self.manifests_dir):
            sub.mkdir(parents=True, exist_ok=True)
        fsync_dir(self.directory)  # the new sub-directories must survive a crash too

    # -- paths ------------------------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        """Where the tensor with this `tensor_sha256` is (or would be) stored."""
        return self.blobs_dir / _checked_hex(sha256, "sha256")

    def manifest_path(self, checkpoint_id: str) -> Path:
        """Where the manifest of this checkpoint is (or would be) stored."""
        return self.manifests_dir / f"{_checked_hex(checkpoint_id, 'checkpoint_id')}.json"

    # -- writing ----------------------------------------------------------------------------

    def save(self, model_state: State, optimizer_state: dict[Any, Any] | None = None) -> str:
        """Store a checkpoint and return its id; saving the same content again writes nothing."""
        pending: dict[str, torch.Tensor] = {}

        def ref(tensor: torch.Tensor) -> TensorRef:
            tensor = tensor.detach().cpu()
            if _dtype_name(tensor.dtype) is None:
                raise TypeError(f"cannot store a {tensor.dtype} tensor in a checkpoint")
            digest = tensor_sha256(tensor)
            pending.setdefault(digest, tensor)
            return {
                "sha256": digest,
                "dtype": _dtype_name(tensor.dtype),
                "shape": list(tensor.shape),
            }

        for name in model_state:
            if not isinstance(name, str):
                raise TypeError(f"model state names must be strings, got {name!r}")
        model = {name: ref(tensor) for name, tensor in model_state.items()}
        if optimizer_state is not None and not isinstance(optimizer_state, dict):
            raise TypeError("optimizer_state must be a state_dict (a dict) or None")
        manifest = {
            "format": FORMAT,
            "model": model,
            # Same value as `state_sha256(model_state)`, from the hashes we already have.
            "model_sha256": state_sha256_from_tensor_hashes(
                {name: r["sha256"] for name, r in model.items()}
            ),
            "optimizer": None if optimizer_state is None else _encode(optimizer_state, ref),
        }

        for digest, tensor in pending.items():
            path = self.blob_path(digest)
            if not path.exists():
                _write_atomic(path, _raw_bytes(tensor))
        # Also covers blobs found already present (a crash may have left their rename unsynced).
        fsync_dir(self.blobs_dir)

        data = _canonical(manifest)
        checkpoint_id = hashlib.sha256(data).hexdigest()
        path = self.manifest_path(checkpoint_id)
        if not path.exists():
            _write_atomic(path, data)
        return checkpoint_id

    # -- reading ----------------------------------------------------------------------------

    def exists(self, checkpoint_id: str) -> bool:
        """Whether a manifest with this id is present (not whether it verifies)."""
        if not isinstance(checkpoint_id, str) or not _SHA256.fullmatch(checkpoint_id):
            return False
        return self.manifest_path(checkpoint_id).is_file()

    def manifest(self, checkpoint_id: str) -> dict[str, Any]:
        """The parsed manifest, after checking it hashes to its id and is well formed."""
        path = self.manifest_path(checkpoint_id)
        data = _read(path, "checkpoint manifest")
        if hashlib.sha256(data).hexdigest() != checkpoint_id:
            raise AuditError(
                "checkpoint manifest does not match its id", file=str(path), expected=checkpoint_id
            )
        try:
            manifest = json.loads(data)
        except ValueError as exc:
            raise AuditError(f"checkpoint manifest is not JSON: {exc}", file=str(path)) from exc
        _check_manifest(manifest, path)
        return manifest

    def model_sha256(self, checkpoint_id: str) -> str:
        """The weights commitment (`state_sha256`) recorded in the verified manifest."""
        return str(self.manifest(checkpoint_id)["model_sha256"])

    def load(self, checkpoint_id: str) -> tuple[State, dict[Any, Any] | None]:
        """Model state and optimizer state (or None), every blob checked against its hash.

        Tensors are fresh CPU tensors, one per reference (never shared), so an optimizer that
        updates its `step` tensors in place cannot update two of them at once.
        """
        manifest = self.manifest(checkpoint_id)
        tensor_of = self._tensor_reader()
        state = {name: tensor_of(ref) for name, ref in manifest["model"].items()}
        optimizer = manifest["optimizer"]
        path = self.manifest_path(checkpoint_id)
        return state, None if optimizer is None else _decode(optimizer, tensor_of, path)

    def load_model(self, checkpoint_id: str) -> State:
        """Only the model state; the optimizer's blobs are neither read nor checked."""
        manifest = self.manifest(checkpoint_id)
        tensor_of = self._tensor_reader()
        return {name: tensor_of(ref) for name, ref in manifest["model"].items()}

    def verify(self, checkpoint_id: str) -> None:
        """Check the manifest and every blob it names, without building tensors.

        Raises `AuditError` naming the first missing or changed file. Since each blob's hash
        matches the manifest and the manifest's `model_sha256` matches its tensor hashes, a
        checkpoint that verifies loads to exactly the committed weights.
        """
        manifest = self.manifest(checkpoint_id)
        seen: set[str] = set()
        for ref in _refs(manifest, self.manifest_path(checkpoint_id)):
            if ref["sha256"] not in seen:
                seen.add(ref["sha256"])
                self._check_blob_file(ref)

    def stored_bytes(self) -> int:
        """Total size of all blobs and manifests (temp files of unfinished writes excluded)."""
        total = 0
        for sub in (self.blobs_dir, self.manifests_dir):
            for entry in os.scandir(sub):
                if entry.is_file() and not entry.name.endswith(".tmp"):
                    total += entry.stat().st_size
        return total

    # -- internals --------------------------------------------------------------------------

    def _tensor_reader(self) -> Callable[[TensorRef], torch.Tensor]:
        """Builds tensors from verified blobs, reading each distinct blob once."""
        import torch

        cache: dict[str, bytes] = {}

        def tensor_of(ref: TensorRef) -> torch.Tensor:
            digest = ref["sha256"]
            if digest not in cache:
                cache[digest] = self._read_blob(ref)
            dtype = _torch_dtype(ref["dtype"])
            shape = tuple(ref["shape"])
            if not cache[digest]:  # frombuffer refuses an empty buffer
                return torch.empty(shape, dtype=dtype)
            return torch.frombuffer(bytearray(cache[digest]), dtype=dtype).reshape(shape)

        return tensor_of

    def _read_blob(self, ref: TensorRef) -> bytes:
        path = self.blob_path(ref["sha256"])
        data = _read(path, "checkpoint blob")
        digest = _blob_hasher(ref)
        digest.update(data)
        _check_blob(path, ref, len(data), digest.hexdigest())
        return data

    def _check_blob_file(self, ref: TensorRef) -> None:
        path = self.blob_path(ref["sha256"])
        digest = _blob_hasher(ref)
        size = 0
        try:
            with path.open("rb") as f:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        except FileNotFoundError as exc:
            raise AuditError("checkpoint blob missing", file=str(path)) from exc
        except OSError as exc:
            raise AuditError(
                f"cannot read checkpoint blob: {exc.strerror}", file=str(path)
            ) from exc
        _check_blob(path, ref, size, digest.hexdigest())


# -- blob hashing (mirrors `tensor_sha256`, without building a tensor) --------------------------


def _blob_hasher(ref: TensorRef) -> Any:
    """A SHA-256 primed as `tensor_sha256` primes it; feed it the blob bytes."""
    digest = hashlib.sha256()
    digest.update(f"torch.{ref['dtype']}".encode())
    digest.update(str(tuple(ref["shape"])).encode())
    return digest


def _check_blob(path: Path, ref: TensorRef, size: int, digest: str) -> None:
    expected_size = math.prod(ref["shape"]) * _DTYPE_SIZES[ref["dtype"]]
    if size != expected_size or digest != ref["sha256"]:
        raise AuditError(
            "checkpoint blob does not match its hash", file=str(path), expected=ref["sha256"]
        )


def _raw_bytes(tensor: torch.Tensor) -> memoryview:
    """The tensor's bytes in memory order (native, little-endian on every supported host)."""
    import torch

    flat = tensor.contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().data if flat.numel() else memoryview(b"")


# -- optimizer state as a JSON tree ------------------------------------------------------------
# Every JSON object in the tree is a one-key marker, so markers never collide with user data:
#   {"__tensor__": ref}  {"__dict__": [[key, value], ...]}  {"__tuple__": [...]}
#   {"__float__": "nan" | "inf" | "-inf"}
# Dicts keep their key types (state_dict uses int keys) and order; tuples stay tuples (AdamW's
# `betas`), so the decoded state_dict equals the original exactly.


def _encode(obj: Any, ref: Callable[[torch.Tensor], TensorRef]) -> Any:
    import torch

    if isinstance(obj, torch.Tensor):
        return {"__tensor__": ref(obj)}
    if isinstance(obj, dict):
        pairs = []
        for key, value in obj.items():
            if isinstance(key, torch.Tensor):
                raise TypeError("cannot store a dict keyed by tensors in a checkpoint")
            pairs.append([_encode(key, ref), _encode(value, ref)])
        return {"__dict__": pairs}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(item, ref) for item in obj]}
    if isinstance(obj, list):
        return [_encode(item, ref) for item in obj]
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return {"__float__": "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")}
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint's optimizer state")


def _decode(node: Any, tensor_of: Callable[[TensorRef], Any], path: Path) -> Any:
    if node is None or isinstance(node, bool | int | float | str):
        return node
    if isinstance(node, list):
        return [_decode(item, tensor_of, path) for item in node]
    if isinstance(node, dict) and len(node) == 1:
        ((tag, value),) = node.items()
        if tag == "__tensor__":
            return tensor_of(_check_ref(value, path))
        if tag == "__tuple__" and isinstance(value, list):
            return tuple(_decode(item, tensor_of, path) for item in value)
        if tag == "__float__" and value in _NON_FINITE:
            return _NON_FINITE[value]
        if tag == "__dict__" and isinstance(value, list):
            out: dict[Any, Any] = {}
            for pair in value:
                if not (isinstance(pair, list) and len(pair) == 2):
                    break
                key = _decode(pair[0], tensor_of, path)
                try:
                    hash(key)
                except TypeError:  # a list key: only a forged manifest has one
                    break
                out[key] = _decode(pair[1], tensor_of, path)
            else:
                return out
    raise AuditError("checkpoint manifest has a malformed optimizer state", file=str(path))


def _refs(manifest: dict[str, Any], path: Path) -> Iterator[TensorRef]:
    """Every tensor reference of a checked manifest: model first, then optimizer."""
    yield from manifest["model"].values()
    if manifest["optimizer"] is not None:
        found: list[TensorRef] = []
        _decode(manifest["optimizer"], lambda r: found.append(r), path)
        yield from found


# -- manifest checks ---------------------------------------------------------------------------


def _check_manifest(manifest: Any, path: Path) -> None:
    """Shape of a manifest and its `model_sha256` against its tensor hashes."""

    def bad(field: str, expected: str) -> AuditError:
        return AuditError(
            "malformed checkpoint manifest", file=str(path), field=field, expected=expected
        )

    if not isinstance(manifest, dict) or set(manifest) != {
        "format",
        "model",
        "model_sha256",
        "optimizer",
    }:
        raise bad("keys", "format, model, model_sha256, optimizer")
    if manifest["format"] != FORMAT or isinstance(manifest["format"], bool):
        raise bad("format", f"format {FORMAT}")
    if not isinstance(manifest["model"], dict):
        raise bad("model", "a map of tensor name to tensor reference")
    hashes = {name: _check_ref(ref, path)["sha256"] for name, ref in manifest["model"].items()}
    if manifest["model_sha256"] != state_sha256_from_tensor_hashes(hashes):
        raise AuditError(
            "checkpoint manifest's model_sha256 does not match its tensors",
            file=str(path),
            field="model_sha256",
            got=manifest["model_sha256"],
        )
    if manifest["optimizer"] is not None:
        _decode(manifest["optimizer"], lambda r: None, path)


def _check_ref(ref: Any, path: Path) -> TensorRef:
    if (
        isinstance(ref, dict)
        and set(ref) == {"sha256", "dtype", "shape"}
        and isinstance(ref["sha256"], str)
        and _SHA256.fullmatch(ref["sha256"])
        and ref["dtype"] in _DTYPE_SIZES
        and isinstance(ref["shape"], list)
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in ref["shape"])
    ):
        return ref
    raise AuditError(
        "checkpoint manifest has a malformed tensor reference",
        file=str(path),
        expected='{"sha256", "dtype", "shape"} with a known dtype',
    )


def _checked_hex(value: str, field: str) -> str:
    """Ids become file names: only a SHA-256 hex digest may, so no id can escape the store."""
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise AuditError(
            "not a checkpoint hash", field=field, got=value, expected="64 lowercase hex digits"
        )
    return value


# -- files -------------------------------------------------------------------------------------


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise AuditError(f"{what} missing", file=str(path)) from exc
    except OSError as exc:
        raise AuditError(f"cannot read {what}: {exc.strerror}", file=str(path)) from exc


def _write_atomic(path: Path, data: bytes | memoryview) -> None:
    """`atomic_write`, with a failed write reported as the checkpoint error it is."""
    try:
        atomic_write(path, data, mode=0o600)
    except OSError as exc:
        raise AuditError(f"cannot write checkpoint file: {exc.strerror}", file=str(path)) from exc

"""Content-addressed checkpoints: `checkpoints/<sha256>.safetensors`.

The file name is the same commitment the audit log records for those weights, so a
checkpoint can be found from an audit entry and verified against it.
"""

from __future__ import annotations

import os
from pathlib import Path

from safetensors.torch import load_file, save_file

from guarded_rl.errors import AuditError
from guarded_rl.weights import State, state_sha256


class CheckpointStore:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        return self.directory / f"{sha256}.safetensors"

    def save(self, state: State, sha256: str | None = None) -> str:
        """Write `state` once (atomically); return its commitment."""
        digest = sha256 or state_sha256(state)
        target = self.path_for(digest)
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
            os.replace(tmp, target)
        return digest

    def load(self, sha256: str) -> State:
        """Read a checkpoint and check it still hashes to its name."""
        target = self.path_for(sha256)
        if not target.exists():
            raise AuditError("checkpoint missing", file=str(target))
        state = load_file(str(target))
        if state_sha256(state) != sha256:
            raise AuditError("checkpoint does not match its commitment", file=str(target))
        return state

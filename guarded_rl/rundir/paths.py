"""Where everything of one run lives: the single definition of a run directory's layout.

Every module that names a run's file takes it from here, so the layout is written down once
(and `audit.jsonl` is spelled in one place). Secrets are not in the run directory: the signing
key and the feedback store's key live in the user's key directory, and `run.toml` records where.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

LOG_FILE = "audit.jsonl"
HEAD_FILE = "audit.head"
PUBLIC_KEY_FILE = "audit.pub"
RUN_TOML = "run.toml"
STORE_FILE = "feedback.sqlite"
CHECKPOINTS_DIR = "checkpoints"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".lock"
INBOX = Path("review") / "inbox"
REFUSED = Path("review") / "refused"


@dataclass(frozen=True, slots=True)
class RunPaths:
    """The files of the run directory `root` (a value: nothing is read or created here,
    except that the key file locations are read from `run.toml`)."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def log(self) -> Path:
        return self.root / LOG_FILE

    @property
    def head(self) -> Path:
        return self.root / HEAD_FILE

    @property
    def public_key(self) -> Path:
        return self.root / PUBLIC_KEY_FILE

    @property
    def run_toml(self) -> Path:
        return self.root / RUN_TOML

    @property
    def feedback_store(self) -> Path:
        return self.root / STORE_FILE

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS_DIR

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY_FILE

    @property
    def lock(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def review_inbox(self) -> Path:
        return self.root / INBOX

    @property
    def review_refused(self) -> Path:
        return self.root / REFUSED

    def recorded_key_file(self) -> Path:
        """The signing key `run.toml` names (what `run --key-file` chose), else the place
        runs made before the per-user key directory kept it."""
        return self._recorded("key_file") or legacy_key_file(self.root)

    def recorded_store_key_file(self) -> Path:
        """The feedback store's key `run.toml` names, else the one beside the signing key."""
        return self._recorded("store_key_file") or store_key_path(self.recorded_key_file())

    def _recorded(self, name: str) -> Path | None:
        try:
            data = tomllib.loads(self.run_toml.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return None
        run = data.get("run")
        value = run.get(name) if isinstance(run, dict) else None
        return Path(value) if isinstance(value, str) and value else None


def legacy_key_file(run_dir: Path) -> Path:
    """`runs/run-X` → `runs/run-X.key`: where runs made before the per-user key directory
    kept their key (only a fallback for a `run.toml` that names none)."""
    run_dir = Path(run_dir)
    return run_dir.parent / f"{run_dir.name}.key"


def store_key_path(signing_key_file: Path) -> Path:
    """`…/run-x-1a2b.key` → `…/run-x-1a2b.store.key`: with the run's other secrets."""
    path = Path(signing_key_file)
    return path.with_name(path.name.removesuffix(".key") + ".store.key")


def user_key_dir() -> Path:
    """`$XDG_DATA_HOME/guarded-rl/keys` (default `~/.local/share/guarded-rl/keys`): the
    user's own, outside any run directory and its parent, so that whoever can rewrite (or
    copy) a run's folder does not also get the key that signs it."""
    base = os.environ.get("XDG_DATA_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "guarded-rl" / "keys"


def new_default_key_file(run_dir: Path) -> Path:
    """A new run's key: `<user key dir>/<run dir name>-<random>.key`, a name never reused.
    The directory is created 0700 (and narrowed to it if it already exists)."""
    keys = user_key_dir()
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(keys, 0o700)
    name = Path(run_dir).resolve().name or "run"
    return keys / f"{name}-{secrets.token_hex(6)}.key"

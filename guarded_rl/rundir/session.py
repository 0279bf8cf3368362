"""A writer's session on one run directory: the only place that takes its lock.

Every writer of a run (a new run, a resumed one, a wrapped loop, consent, feedback import, an
offline review decision, rollback, repair) opens one session and does all its work inside it:

    with open_session(run_dir, key_file=key_file, writing=True) as session:
        subject = session.feedback_store().grant(user_id, purposes, text_sha256=sha)
        session.record([("consent_granted", {...})])

`create_session` makes a new run (after `plan_new_run` checked everything that can be wrong
before the first byte is written); `open_session` opens an existing one, proving its log
against the signed head and checking that the key is the run's own before anything signs.
Leaving the block closes the log and the stores and releases the lock, whatever happened.
"""

from __future__ import annotations

import getpass
import platform
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guarded_rl.approval.live import Reviewable, attach_review
from guarded_rl.approval.queue import ReviewDesk, operator_identity, operator_record, operators_of
from guarded_rl.approval.reviewers import Registry, load_registry
from guarded_rl.atomic import atomic_write
from guarded_rl.audit.appendable import SignedLog, prove_signed_log, run_signing_key
from guarded_rl.audit.checkpoints import CheckpointStore
from guarded_rl.audit.events import SCHEMA_VERSION, validate_payload
from guarded_rl.audit.head import (
    SignedHead,
    generate_signing_key,
    key_id,
    public_key_pem,
    write_public_key,
)
from guarded_rl.audit.history import RunHistory
from guarded_rl.audit.log import AuditEntry, AuditLog
from guarded_rl.audit.signer import HeadSigner, origin_of
from guarded_rl.consent.replay_store import ReplayStore
from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
from guarded_rl.consent.store_key import create_store_key
from guarded_rl.errors import InputError
from guarded_rl.policy import GuardPolicy, parse_policy
from guarded_rl.rundir.lock import run_lock
from guarded_rl.rundir.paths import RunPaths, new_default_key_file, store_key_path

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

#: a run's entries, in the order they are appended: (entry type, payload)
Entries = Sequence[tuple[str, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class NewRun:
    """A new run, checked before anything is written: where it goes, its keys, its operator."""

    paths: RunPaths
    policy: GuardPolicy
    key_file: Path
    store_key_file: Path | None  # None: a run without a feedback store (a wrapped loop)
    operator: str
    operator_signer: Ed25519PrivateKey | None
    registry: Registry | None


def plan_new_run(
    run_dir: str | Path,
    policy: GuardPolicy,
    *,
    key_file: str | Path | None = None,
    operator: str | None = None,
    operator_key: str | Path | None = None,
    with_store: bool = True,
    key_field: str = "--key-file",
) -> NewRun:
    """Check a new run before any write: an empty directory, a reviewers file that can satisfy
    the policy, the operator's identity, key files that do not exist yet."""
    paths = RunPaths(run_dir)
    prepare_run_dir(paths.root)
    registry = review_registry(policy)
    name, signer = operator_identity(
        registry,
        operator,
        Path(operator_key) if operator_key is not None else None,
        four_eyes=policy.gate.four_eyes,
        default_name=login_name(),
    )
    key_path = new_key_file(paths.root, key_file, field=key_field)
    store_key = None
    if with_store:
        store_key = new_key_file(paths.root, store_key_path(key_path), field=key_field)
    return NewRun(paths, policy, key_path, store_key, name, signer, registry)


class RunSession:
    """One writer's hold on a run directory (see the module docstring); made by
    `create_session` or `open_session`, valid inside their block only."""

    def __init__(
        self,
        paths: RunPaths,
        *,
        key: Ed25519PrivateKey | None,
        run_id: str,
        store_key_file: Path | None,
        signed: SignedLog | None = None,
        history: RunHistory | None = None,
    ) -> None:
        self.paths = paths
        self.key = key
        self.run_id = run_id
        self.origin = origin_of(run_id)
        self._store_key_file = store_key_file
        self._signed = signed
        self._history = history
        self._signer: HeadSigner | None = None
        self._feedback: SQLiteFeedbackStore | None = None
        self._replay: ReplayStore | None = None
        self.appended: list[AuditEntry] = []  # what this session wrote, in order

    def __repr__(self) -> str:  # never show the key
        return f"RunSession({str(self.paths.root)!r}, run_id={self.run_id!r})"

    @property
    def run_dir(self) -> Path:
        return self.paths.root

    @property
    def history(self) -> RunHistory:
        """The run's verified history as the log was when the session opened (and nobody else
        writes while it is open)."""
        if self._history is None:
            self._history = RunHistory.load(self.paths.root)
        return self._history

    @cached_property
    def policy(self) -> GuardPolicy:
        """The policy the signed log recorded (not `run.toml`, which anyone can edit)."""
        source = f"{self.paths.log}:run_started"
        return parse_policy(self.history.started.get("policy", {}), source=source)

    @property
    def signer(self) -> HeadSigner:
        """The log, opened for appending, with its head signer (a writing session only)."""
        if self._signer is None:
            if self.key is None:
                raise InputError(
                    "this run was opened for reading only", field="RUN_DIR", got=str(self.run_dir)
                )
            log = AuditLog(self.paths.log)
            self._signer = HeadSigner(log, self.key, self.origin, self.paths.head)
        return self._signer

    @property
    def log(self) -> AuditLog:
        return self.signer.log

    @cached_property
    def checkpoints(self) -> CheckpointStore:
        return CheckpointStore(self.paths.checkpoints)

    def feedback_store(self) -> SQLiteFeedbackStore:
        """The run's consent ledger and feedback (opened once, closed with the session)."""
        if self._feedback is None:
            self._feedback = SQLiteFeedbackStore(
                self.paths.feedback_store, key_file=self._store_key_file
            )
        return self._feedback

    def replay_store(self) -> ReplayStore:
        """The run's sealed training batches (opened once, closed with the session)."""
        if self._replay is None:
            self._replay = ReplayStore(self.paths.feedback_store, key_file=self._store_key_file)
        return self._replay

    @property
    def signed(self) -> SignedLog:
        """The log as proven against its signed head when the session opened (writing)."""
        if self._signed is None:
            raise InputError("this run was not opened for writing", field="RUN_DIR")
        return self._signed

    def append(self, kind: str, payload: dict[str, Any]) -> AuditEntry:
        entry = self.log.append(kind, payload)
        self.appended.append(entry)
        return entry

    def sign(self) -> SignedHead:
        return self.signer.sign()

    def record(self, entries: Entries) -> SignedHead:
        """Append entries and sign a head over them (one operation of a command): all are
        checked against the schema first, so a bad last one cannot follow a written first."""
        for kind, payload in entries:
            validate_payload(kind, payload)
        for kind, payload in entries:
            self.append(kind, payload)
        return self.sign()

    def start(
        self,
        policy: GuardPolicy,
        *,
        operator: NewRun,
        base_sha256: str,
        base_checkpoint_id: str,
        **details: Any,
    ) -> AuditEntry:
        """The first entries of a new run: `run_started` (policy, base weights, the public key,
        who started it, and `details`) and the start checkpoint's `checkpoint_saved`."""
        if self.key is None:
            raise InputError("a run starts in a writing session", field="RUN_DIR")
        public = self.key.public_key()
        started = self.append(
            "run_started",
            {
                "schema_version": SCHEMA_VERSION,
                "run_id": self.run_id,
                **details,
                "policy": policy.model_dump(),
                "base_sha256": base_sha256,
                "base_checkpoint_id": base_checkpoint_id,
                "versions": runtime_versions(),
                "public_key": public_key_pem(public),
                "key_id": key_id(public),
                "operator": operator_record(
                    self.origin,
                    operator.operator,
                    operator.registry,
                    key=operator.operator_signer,
                    prev=self.log.head,
                ),
            },
        )
        self.append(
            "checkpoint_saved",
            {
                "checkpoint_id": base_checkpoint_id,
                "model_sha256": base_sha256,
                "with_optimizer": True,
                "reason": "start",
            },
        )
        return started

    def resumed(
        self, payload: dict[str, Any], *, operator: str | None, operator_key: Path | None
    ) -> AuditEntry:
        """The `run_resumed` entry of a continued run: `payload`, versions and who resumed it
        (checked against the run's reviewers, as at the start)."""
        policy = self.policy
        registry = review_registry(policy)
        name, signer = operator_identity(
            registry,
            operator,
            operator_key,
            four_eyes=policy.gate.four_eyes,
            default_name=login_name(),
        )
        record = operator_record(
            self.origin, name, registry, key=signer, kind="run_resumed", prev=self.log.head
        )
        return self.append(
            "run_resumed", {**payload, "versions": runtime_versions(), "operator": record}
        )

    def review_desk(self, target: Reviewable, earlier: Sequence[AuditEntry] = ()) -> ReviewDesk:
        """Give a loop (a `Guard` or `Settlement`) its review desk, with the queue and the
        operators of the log: `earlier` (the log before this session) and what it appended."""
        return attach_review(
            target,
            origin=self.origin,
            operators=operators_of([*earlier, *self.appended]),
            entries=earlier,
        )

    def finish(self, payload: dict[str, Any]) -> SignedHead:
        """The `run_finished` entry, and a head signed over everything."""
        self.append("run_finished", payload)
        return self.sign()

    def close(self) -> None:
        for closing in (self._signer.log if self._signer else None, self._feedback, self._replay):
            if closing is not None:
                closing.close()
        self._signer = self._feedback = self._replay = None


@contextmanager
def create_session(plan: NewRun, run_settings: dict[str, Any]) -> Iterator[RunSession]:
    """Create the run `plan` describes and hold it: directory (0700), `run.toml` (a readable
    copy of `run_settings` and the policy, and where the keys are), the signing key and its
    public copy, the feedback store's key. `start` writes the first entries."""
    root = plan.paths.root
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)  # personal data and the run's record: the owner's alone
    with run_lock(root):
        toml = run_toml(run_settings, plan.policy, plan.key_file, plan.store_key_file)
        atomic_write(plan.paths.run_toml, toml.encode())
        key = generate_signing_key(plan.key_file)
        if plan.store_key_file is not None:
            create_store_key(plan.store_key_file)  # with the run's other secrets, outside
        write_public_key(plan.paths.public_key, key.public_key())
        session = RunSession(
            plan.paths, key=key, run_id=uuid.uuid4().hex[:16], store_key_file=plan.store_key_file
        )
        try:
            yield session
        finally:
            session.close()


@contextmanager
def open_session(
    run_dir: str | Path,
    *,
    key_file: str | Path | None = None,
    writing: bool = False,
    allow_torn: bool = False,
    allow_unsigned: bool = False,
) -> Iterator[RunSession]:
    """Hold an existing run. `writing`: the log must prove against its signed head and the key
    (`key_file`, else the one `run.toml` names) must be the run's own, before anything is
    written; `allow_torn`/`allow_unsigned` are for `audit repair` only."""
    paths = RunPaths(run_dir)
    if not paths.root.is_dir():
        raise InputError("no such run directory", field="RUN_DIR", got=str(run_dir))
    with run_lock(paths.root):  # no live run or other command writes meanwhile
        signed = key = None
        if writing:
            signed = prove_signed_log(
                paths.root, allow_torn=allow_torn, allow_unsigned=allow_unsigned
            )
            key = run_signing_key(paths.root, key_file, signed=signed)
        history = None
        if not (allow_torn or allow_unsigned):  # the log verifies before anything acts on it
            history = RunHistory.load(paths.root)
        started = history.started if history is not None else signed.started if signed else {}
        run_id = str(started.get("run_id"))
        session = RunSession(
            paths,
            key=key,
            run_id=run_id,
            store_key_file=paths.recorded_store_key_file(),
            signed=signed,
            history=history,
        )
        try:
            yield session
        finally:
            session.close()


def prepare_run_dir(run_dir: Path) -> None:
    """Refuse to mix two runs in one folder."""
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise InputError(
            "run directory is not empty",
            field="--run-dir",
            got=str(run_dir),
            expected="a new or empty directory",
        )


def new_key_file(run_dir: Path, key_file: str | Path | None, *, field: str) -> Path:
    """Where a new run's key goes (default: a new file in the user's key directory); never
    over an existing key. Recorded absolute in run.toml, so other commands find it from any
    folder."""
    path = Path(key_file) if key_file is not None else new_default_key_file(run_dir)
    path = path.absolute()
    if path.exists():
        raise InputError(
            "signing key file already exists (one key per run)",
            field=field,
            got=str(path),
            expected="a path where a new key can be created",
        )
    return path


def review_registry(policy: GuardPolicy) -> Registry | None:
    """The policy's reviewers file, checked; refuses a policy nobody could ever satisfy."""
    gate = policy.gate
    if gate.reviewers is None:
        if gate.human_review == "always":
            raise InputError(
                "the policy sends every update to human review but names no reviewers",
                field="gate.reviewers",
                expected="a reviewers file (in the policy, or `run --reviewers FILE`)",
            )
        return None
    registry = load_registry(gate.reviewers)
    allowed = [r for r in registry.reviewers if r.role in gate.reviewer_roles]
    if len(allowed) < gate.approvals_required:
        raise InputError(
            f"the reviewers file has {len(allowed)} reviewer(s) with a role of "
            f"{gate.reviewer_roles}, fewer than the {gate.approvals_required} approvals required",
            file=str(registry.path),
            field="gate.approvals_required",
            got=gate.approvals_required,
            expected=f"at most {len(allowed)}, or more reviewers",
        )
    return registry


def login_name() -> str:
    """Who runs this process (the default operator)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def run_toml(
    run: dict[str, Any], policy: GuardPolicy, key_file: Path, store_key_file: Path | None = None
) -> str:
    """`run.toml`: a readable copy of the run settings and policy (the signed copy is in the
    log's `run_started`) and where the run's secrets are (signing key, store key)."""
    import tomli_w

    run = {**run, "key_file": str(key_file)}
    if store_key_file is not None:
        run["store_key_file"] = str(store_key_file)
    return tomli_w.dumps(_without_none({"run": run, "policy": policy.model_dump()}))


def _without_none(value: Any) -> Any:
    """TOML has no null: an unset optional setting is simply left out."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def runtime_versions() -> dict[str, Any]:
    """What a replay must match: interpreter, libraries, code, threads, determinism."""
    import torch
    import transformers

    import guarded_rl

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "guarded_rl": guarded_rl.__version__,
        "code": _code_version(),
        "torch_threads": torch.get_num_threads(),
        "device": "cpu",
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }


def _code_version() -> str:
    """The git commit of the package source when it runs from a checkout, else 'release'."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "release"
    return out.stdout.strip() if out.returncode == 0 else "release"

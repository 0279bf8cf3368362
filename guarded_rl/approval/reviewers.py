"""Reviewers: who may decide on a pending update, with which role and which Ed25519 key.

A reviewers file is TOML with one `[[reviewer]]` table per person::

    [[reviewer]]
    name = "alice"
    role = "reviewer"
    public_key = "3b6a27bc...": 64 hex digits, the raw Ed25519 public key

The audit log never names reviewers: it records their key fingerprint (`rk-` + 16 hex digits
of SHA-256 over the raw public key), which the reviewers file maps back to a person.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from guarded_rl.atomic import atomic_write
from guarded_rl.errors import AuditError, InputError, first_few

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class ReviewError(InputError):
    """A review decision that cannot be accepted; nothing is recorded."""


class Reviewer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(..., pattern=NAME_PATTERN, description="Who this is (never logged).")
    role: str = Field(..., pattern=NAME_PATTERN, description="Checked against reviewer_roles.")
    public_key: str = Field(
        ..., pattern=r"^[0-9a-f]{64}$", description="Raw Ed25519 public key, 64 hex digits."
    )

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(bytes.fromhex(self.public_key))

    def verification_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.public_key))


class ReviewersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reviewer: list[Reviewer] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ReviewersFile:
        for attr in ("name", "public_key"):
            seen: set[str] = set()
            for r in self.reviewer:
                value = getattr(r, attr)
                if value in seen:
                    raise ValueError(f"two reviewers share the {attr} {value[:16]!r}")
                seen.add(value)
        return self


@dataclass(frozen=True, slots=True)
class Registry:
    """A loaded reviewers file, and the SHA-256 of its bytes (recorded with each decision)."""

    path: Path
    reviewers: tuple[Reviewer, ...]
    sha256: str

    def by_name(self, name: str) -> Reviewer:
        for r in self.reviewers:
            if r.name == name:
                return r
        raise ReviewError(
            "not a registered reviewer",
            file=str(self.path),
            field="--reviewer",
            got=name,
            expected=f"one of {first_few([r.name for r in self.reviewers])}",
        )

    def by_fingerprint(self, fingerprint: str) -> Reviewer | None:
        return next((r for r in self.reviewers if r.fingerprint == fingerprint), None)

    def name_of(self, fingerprint: str) -> str:
        """For display: the reviewer's name, or the fingerprint of a key no longer listed."""
        found = self.by_fingerprint(fingerprint)
        return found.name if found else fingerprint


def fingerprint_of(raw_public_key: bytes) -> str:
    return "rk-" + hashlib.sha256(raw_public_key).hexdigest()[:16]


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_registry(path: str | Path) -> Registry:
    """Read and validate a reviewers file; every problem is one line naming file and field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such reviewers file", file=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read reviewers file: {exc.strerror}", file=str(path)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"invalid TOML: {exc}", file=str(path)) from None
    try:
        parsed = ReviewersFile.model_validate(data)
    except ValidationError as exc:
        from guarded_rl.policy import validation_error_to_input_error

        raise validation_error_to_input_error(
            exc, ReviewersFile, str(path), error_cls=InputError
        ) from None
    return Registry(path, tuple(parsed.reviewer), hashlib.sha256(raw).hexdigest())


def create_reviewer_key(
    name: str, role: str, key_file: Path, reviewers_file: Path | None = None
) -> Reviewer:
    """A new key pair: the private key at `key_file` (mode 0600, never overwritten) and the
    reviewer entry, added to `reviewers_file` when one is given (created if missing)."""
    from guarded_rl.audit.head import generate_signing_key

    entry_check = {"name": name, "role": role, "public_key": "0" * 64}
    try:
        Reviewer.model_validate(entry_check)
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0])
        raise InputError(
            "invalid value", field=f"--{field}", got=entry_check[field], expected=NAME_PATTERN
        ) from None
    registry = None
    if reviewers_file is not None and Path(reviewers_file).exists():
        registry = load_registry(reviewers_file)
        if any(r.name == name for r in registry.reviewers):
            raise InputError(
                "a reviewer of this name is already registered",
                file=str(reviewers_file),
                field="--name",
                got=name,
                expected="a new name",
            )
    try:
        key = generate_signing_key(Path(key_file))
    except AuditError as exc:
        raise InputError(exc.message, file=exc.file, field="--key-file") from None
    reviewer = Reviewer(name=name, role=role, public_key=raw_public_key(key.public_key()).hex())
    if reviewers_file is not None:
        before = registry.path.read_text(encoding="utf-8") if registry else ""
        atomic_write(Path(reviewers_file), (before + reviewer_toml(reviewer)).encode())
    return reviewer


def reviewer_toml(reviewer: Reviewer) -> str:
    return (
        f'\n[[reviewer]]\nname = "{reviewer.name}"\nrole = "{reviewer.role}"\n'
        f'public_key = "{reviewer.public_key}"\n'
    )


def load_reviewer_key(path: str | Path) -> Ed25519PrivateKey:
    """A reviewer's private key (mode 0600 or stricter), as an input error when unusable."""
    from guarded_rl.audit.head import load_signing_key

    try:
        return load_signing_key(Path(path))
    except AuditError as exc:
        raise ReviewError(
            exc.message.replace("signing key", "reviewer key"),
            file=exc.file,
            field="--key",
            got=exc.got,
            expected=exc.expected,
        ) from None

"""Reviewers file and keys: 0600 keys never overwritten, one-line errors naming file and field."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from guarded_rl.approval.reviewers import (
    Registry,
    Reviewer,
    ReviewError,
    create_reviewer_key,
    fingerprint_of,
    load_registry,
    load_reviewer_key,
    raw_public_key,
)
from guarded_rl.errors import InputError

KEY_A = "a" * 64
KEY_B = "b" * 64


def _entry(
    name: str, public_key: str, role: str = "reviewer", key_field: str = "public_key"
) -> str:
    return f'[[reviewer]]\nname = "{name}"\nrole = "{role}"\n{key_field} = "{public_key}"\n\n'


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _load_error(path: Path) -> str:
    with pytest.raises(InputError) as info:
        load_registry(path)
    return info.value.one_line()


# --- create_reviewer_key -------------------------------------------------------------------


def test_create_writes_a_0600_key_and_a_registry_entry(tmp_path: Path) -> None:
    key_file, reviewers = tmp_path / "keys" / "alice.pem", tmp_path / "reviewers.toml"
    created = create_reviewer_key("alice", "reviewer", key_file, reviewers)

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = load_reviewer_key(key_file)
    assert raw_public_key(key.public_key()).hex() == created.public_key

    registry = load_registry(reviewers)
    assert registry.reviewers == (
        Reviewer(name="alice", role="reviewer", public_key=created.public_key),
    )
    assert registry.sha256 == hashlib.sha256(reviewers.read_bytes()).hexdigest()
    assert registry.path == reviewers


def test_key_mode_is_exact_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        create_reviewer_key("alice", "reviewer", tmp_path / "alice.pem")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "alice.pem").stat().st_mode) == 0o600


def test_create_without_reviewers_file_writes_only_the_key(tmp_path: Path) -> None:
    created = create_reviewer_key("alice", "auditor", tmp_path / "alice.pem")
    assert created.role == "auditor"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice.pem"]


def test_second_reviewer_is_appended_and_the_first_kept(tmp_path: Path) -> None:
    reviewers = tmp_path / "reviewers.toml"
    alice = create_reviewer_key("alice", "reviewer", tmp_path / "alice.pem", reviewers)
    bob = create_reviewer_key("bob", "lead", tmp_path / "bob.pem", reviewers)

    registry = load_registry(reviewers)
    assert registry.reviewers == (alice, bob)
    assert registry.by_name("alice").public_key == alice.public_key
    assert registry.by_name("bob").role == "lead"


def test_existing_key_file_is_never_overwritten(tmp_path: Path) -> None:
    key_file, reviewers = tmp_path / "alice.pem", tmp_path / "reviewers.toml"
    key_file.write_bytes(b"precious")

    with pytest.raises(InputError) as info:
        create_reviewer_key("alice", "reviewer", key_file, reviewers)

    assert info.value.field == "--key-file"
    assert str(key_file) in info.value.one_line()
    assert key_file.read_bytes() == b"precious"
    assert not reviewers.exists()


def test_duplicate_name_is_refused_before_any_key_is_made(tmp_path: Path) -> None:
    reviewers = tmp_path / "reviewers.toml"
    create_reviewer_key("alice", "reviewer", tmp_path / "alice.pem", reviewers)
    before = reviewers.read_bytes()

    with pytest.raises(InputError) as info:
        create_reviewer_key("alice", "lead", tmp_path / "alice2.pem", reviewers)

    line = info.value.one_line()
    assert str(reviewers) in line
    assert "--name" in line
    assert reviewers.read_bytes() == before
    assert not (tmp_path / "alice2.pem").exists()


@pytest.mark.parametrize(
    ("name", "role", "field"),
    [("al ice", "reviewer", "--name"), ("alice", "", "--role"), ("-alice", "reviewer", "--name")],
)
def test_invalid_name_or_role_is_refused(tmp_path: Path, name: str, role: str, field: str) -> None:
    with pytest.raises(InputError) as info:
        create_reviewer_key(name, role, tmp_path / "k.pem", tmp_path / "reviewers.toml")
    assert info.value.field == field
    assert list(tmp_path.iterdir()) == []


# --- load_registry -------------------------------------------------------------------------


def test_unknown_key_names_file_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.toml", _entry("alice", KEY_A) + 'email = "x"\n')
    line = _load_error(path)
    assert str(path) in line
    assert "reviewer.0.email" in line
    assert "unknown key" in line
    assert "public_key" in line  # the allowed keys are listed


def test_misspelled_key_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.toml", _entry("alice", KEY_A, key_field="publickey"))
    line = _load_error(path)
    assert str(path) in line
    assert "reviewer.0.publickey" in line


def test_bad_public_key_names_file_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.toml", _entry("alice", KEY_A) + _entry("bob", "ab" * 31))
    line = _load_error(path)
    assert str(path) in line
    assert "reviewer.1.public_key" in line


def test_uppercase_hex_public_key_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.toml", _entry("alice", "A" * 64))
    assert "reviewer.0.public_key" in _load_error(path)


def test_duplicate_public_key_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.toml", _entry("alice", KEY_A) + _entry("bob", KEY_A))
    line = _load_error(path)
    assert str(path) in line
    assert "public_key" in line
    assert "two reviewers share" in line


def test_duplicate_name_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.toml", _entry("alice", KEY_A) + _entry("alice", KEY_B))
    line = _load_error(path)
    assert str(path) in line
    assert "share the name 'alice'" in line


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.toml", "[[reviewer]\nname = ")
    line = _load_error(path)
    assert str(path) in line
    assert "invalid TOML" in line


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    line = _load_error(path)
    assert str(path) in line
    assert "no such reviewers file" in line


def test_empty_file_is_an_empty_registry(tmp_path: Path) -> None:
    assert load_registry(_write(tmp_path / "r.toml", "")).reviewers == ()


# --- Registry lookups ----------------------------------------------------------------------


def _registry(tmp_path: Path) -> Registry:
    return load_registry(
        _write(tmp_path / "r.toml", _entry("alice", KEY_A) + _entry("bob", KEY_B, role="lead"))
    )


def test_by_name_unknown_is_a_review_error(tmp_path: Path) -> None:
    with pytest.raises(ReviewError) as info:
        _registry(tmp_path).by_name("carol")
    line = info.value.one_line()
    assert "--reviewer = 'carol'" in line
    assert "alice" in line and "bob" in line


def test_by_fingerprint_and_name_of(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    bob_fp = fingerprint_of(bytes.fromhex(KEY_B))
    assert registry.by_fingerprint(bob_fp) == registry.by_name("bob")
    assert registry.by_fingerprint("rk-" + "0" * 16) is None
    assert registry.name_of(bob_fp) == "bob"
    assert registry.name_of("rk-" + "0" * 16) == "rk-" + "0" * 16


def test_fingerprint_format() -> None:
    raw = raw_public_key(Ed25519PrivateKey.generate().public_key())
    fp = fingerprint_of(raw)
    assert re.fullmatch(r"rk-[0-9a-f]{16}", fp)
    assert fp == "rk-" + hashlib.sha256(raw).hexdigest()[:16]
    assert Reviewer(name="x", role="reviewer", public_key=raw.hex()).fingerprint == fp


# --- load_reviewer_key ---------------------------------------------------------------------


def test_group_readable_key_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "alice.pem"
    create_reviewer_key("alice", "reviewer", key_file)
    key_file.chmod(0o644)

    with pytest.raises(ReviewError) as info:
        load_reviewer_key(key_file)

    line = info.value.one_line()
    assert "--key" in line
    assert "reviewer key" in line
    assert str(key_file) in line


def test_missing_key_is_a_review_error(tmp_path: Path) -> None:
    with pytest.raises(ReviewError) as info:
        load_reviewer_key(tmp_path / "absent.pem")
    assert info.value.field == "--key"


def test_0600_key_loads_and_signs_for_its_public_key(tmp_path: Path) -> None:
    key_file = tmp_path / "alice.pem"
    created = create_reviewer_key("alice", "reviewer", key_file)
    key = load_reviewer_key(key_file)
    created.verification_key().verify(key.sign(b"msg"), b"msg")


def test_duplicate_name_is_shown_as_written(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.toml", _entry("Alice", KEY_A) + _entry("Alice", KEY_B))
    assert "'Alice'" in _load_error(path)

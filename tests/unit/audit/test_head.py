"""Signed tree heads: a head verifies only unchanged, under its own key; keys stay private."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from guarded_rl.audit.head import (
    SignedHead,
    generate_signing_key,
    key_id,
    load_public_key,
    load_signing_key,
    read_head,
    sign_head,
    verify_head,
    write_head,
    write_public_key,
)
from guarded_rl.audit.merkle import merkle_root
from guarded_rl.errors import AuditError

ROOT = merkle_root([b"a", b"b", b"c"])


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _head(key: Ed25519PrivateKey, **overrides: object) -> SignedHead:
    args: dict = {"origin": "guarded-rl/run-1", "tree_size": 3, "root": ROOT, "timestamp": 1.5e9}
    args.update(overrides)
    return sign_head(key, **args)


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _raw_private(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


# -- signing and verifying ---------------------------------------------------------------------


def test_sign_then_verify_round_trip(key: Ed25519PrivateKey) -> None:
    head = _head(key)
    assert head.tree_size == 3
    assert head.root_hash == ROOT.hex()
    assert head.key_id == key_id(key.public_key())
    assert len(head.key_id) == 16
    assert verify_head(head, key.public_key())
    assert SignedHead.from_json(head.to_json(), source="x") == head


def test_body_is_the_documented_format(key: Ed25519PrivateKey) -> None:
    head = _head(key, timestamp=1700000000.25)
    root_b64 = base64.b64encode(ROOT).decode()
    assert head.body() == f"guarded-rl/run-1\n3\n{root_b64}\n1700000000.250000\n".encode()
    key.public_key().verify(base64.b64decode(head.signature), head.body())


def test_default_timestamp_is_now_and_survives_json(key: Ed25519PrivateKey) -> None:
    head = sign_head(key, origin="o", tree_size=0, root=merkle_root([]))
    assert head.timestamp > 1.6e9
    again = SignedHead.from_json(head.to_json(), source="x")
    assert again.body() == head.body()
    assert verify_head(again, key.public_key())


def test_to_json_is_canonical(key: Ed25519PrivateKey) -> None:
    text = _head(key).to_json()
    assert text.endswith("\n")
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":")) + "\n"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tree_size", 4),
        ("tree_size", 2),
        ("root_hash", merkle_root([b"a", b"b", b"x"]).hex()),
        ("origin", "guarded-rl/run-2"),
        ("timestamp", 1.5e9 + 1),
        ("timestamp", 1.5e9 + 1e-6),
    ],
)
def test_tampering_a_field_fails_verification(
    key: Ed25519PrivateKey, field: str, value: object
) -> None:
    tampered = dataclasses.replace(_head(key), **{field: value})
    assert not verify_head(tampered, key.public_key())


def test_tampered_or_garbage_signature_fails_without_raising(key: Ed25519PrivateKey) -> None:
    head = _head(key)
    sig = bytearray(base64.b64decode(head.signature))
    sig[0] ^= 1
    flipped = base64.b64encode(bytes(sig)).decode()
    other = base64.b64encode(key.sign(b"something else")).decode()
    for signature in (flipped, other, "", "not base64!", "AAAA"):
        assert not verify_head(dataclasses.replace(head, signature=signature), key.public_key())


def test_garbage_root_hash_fails_without_raising(key: Ed25519PrivateKey) -> None:
    assert not verify_head(dataclasses.replace(_head(key), root_hash="zz"), key.public_key())


def test_another_key_does_not_verify(key: Ed25519PrivateKey) -> None:
    head = _head(key)
    other = Ed25519PrivateKey.generate().public_key()
    assert not verify_head(head, other)
    # Even with the key id rewritten to match, the signature is still the other key's.
    assert not verify_head(dataclasses.replace(head, key_id=key_id(other)), other)


def test_sign_head_rejects_bad_arguments(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError):
        _head(key, root=b"short")
    with pytest.raises(ValueError):
        _head(key, origin="two\nlines")
    with pytest.raises(ValueError):
        _head(key, tree_size=-1)


# -- keys --------------------------------------------------------------------------------------


def test_generated_key_is_0600_loads_and_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "nested" / "signing.pem"
    key = generate_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_signing_key(path)
    assert _raw_private(loaded) == _raw_private(key)

    before = path.read_bytes()
    with pytest.raises(AuditError) as info:
        generate_signing_key(path)
    assert str(path) in info.value.one_line()
    assert "overwrite" in info.value.one_line()
    assert path.read_bytes() == before


def test_generated_key_is_0600_even_under_a_loose_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "signing.pem"
        generate_signing_key(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_load_signing_key_refuses_a_group_or_world_readable_key(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    generate_signing_key(path)
    path.chmod(0o644)
    with pytest.raises(AuditError) as info:
        load_signing_key(path)
    line = info.value.one_line()
    assert str(path) in line
    assert "chmod 600" in line


def test_load_signing_key_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(AuditError, match="missing"):
        load_signing_key(missing)

    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a key")
    garbage.chmod(0o600)
    with pytest.raises(AuditError) as info:
        load_signing_key(garbage)
    assert str(garbage) in info.value.one_line()

    ec = tmp_path / "ec.pem"
    ec.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ec.chmod(0o600)
    with pytest.raises(AuditError, match="not an Ed25519 private key"):
        load_signing_key(ec)

    with pytest.raises(AuditError, match="not a regular file"):
        load_signing_key(tmp_path)


def test_private_key_never_shows_in_errors_or_reprs(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    key = generate_signing_key(path)
    secrets = [_raw_private(key).hex(), base64.b64encode(_raw_private(key)).decode()]
    pem_body = "".join(_private_pem(key).decode().splitlines()[1:-1])
    texts = [repr(key), str(key), repr(_head(key)), _head(key).to_json()]
    path.chmod(0o640)
    with pytest.raises(AuditError) as info:
        load_signing_key(path)
    texts.append(info.value.one_line())
    path.chmod(0o600)
    with pytest.raises(AuditError) as again:
        generate_signing_key(path)
    texts.append(again.value.one_line())
    for text in texts:
        for secret in [*secrets, pem_body]:
            assert secret not in text


def test_public_key_round_trip(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    path = tmp_path / "pub" / "signing.pub"
    write_public_key(path, key.public_key())
    assert path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    loaded = load_public_key(path)
    assert key_id(loaded) == key_id(key.public_key())
    assert verify_head(_head(key), loaded)
    assert [p.name for p in path.parent.iterdir()] == ["signing.pub"]


def test_load_public_key_errors(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    with pytest.raises(AuditError, match="missing"):
        load_public_key(tmp_path / "nope.pub")
    bad = tmp_path / "bad.pub"
    bad.write_bytes(b"junk")
    with pytest.raises(AuditError) as info:
        load_public_key(bad)
    assert str(bad) in info.value.one_line()
    ec = tmp_path / "ec.pub"
    ec.write_bytes(
        generate_private_key(SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(AuditError, match="not an Ed25519 public key"):
        load_public_key(ec)


# -- parsing -----------------------------------------------------------------------------------


def _fields(key: Ed25519PrivateKey) -> dict:
    return json.loads(_head(key).to_json())


def _from_json_error(text: str) -> AuditError:
    with pytest.raises(AuditError) as info:
        SignedHead.from_json(text, source="heads/head.json")
    line = info.value.one_line()
    assert line.startswith("heads/head.json:")
    assert "\n" not in line
    return info.value


def test_from_json_rejects_extra_and_missing_fields(key: Ed25519PrivateKey) -> None:
    extra = {**_fields(key), "comment": "hi"}
    assert "comment" in _from_json_error(json.dumps(extra)).one_line()
    for name in _fields(key):
        missing = _fields(key)
        del missing[name]
        assert name in _from_json_error(json.dumps(missing)).one_line()


@pytest.mark.parametrize(
    "text",
    ["", "not json", "{", "[]", "null", "42", '"head"', "\x00\x01garbage"],
)
def test_from_json_rejects_garbage(text: str) -> None:
    _from_json_error(text)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("origin", 7),
        ("origin", ""),
        ("origin", "a\nb"),
        ("tree_size", "3"),
        ("tree_size", 3.0),
        ("tree_size", True),
        ("tree_size", -1),
        ("root_hash", "zz" * 32),
        ("root_hash", "ab"),
        ("root_hash", ROOT.hex().upper()),
        ("root_hash", None),
        ("timestamp", "now"),
        ("timestamp", False),
        ("timestamp", -1.0),
        ("key_id", "0123"),
        ("key_id", "g" * 16),
        ("key_id", 1234567890123456),
        ("signature", "not base64!"),
        ("signature", base64.b64encode(b"x" * 63).decode()),
        ("signature", 5),
    ],
)
def test_from_json_rejects_wrong_types_and_encodings(
    key: Ed25519PrivateKey, field: str, value: object
) -> None:
    fields = {**_fields(key), field: value}
    assert field in _from_json_error(json.dumps(fields)).one_line()


def test_from_json_rejects_non_finite_timestamp(key: Ed25519PrivateKey) -> None:
    text = _head(key).to_json().replace('"timestamp":1500000000.0', '"timestamp":NaN')
    assert "NaN" in text
    assert "timestamp" in _from_json_error(text).one_line()


def test_from_json_shortens_huge_values(key: Ed25519PrivateKey) -> None:
    fields = {**_fields(key), "origin": ["x" * 10_000]}
    assert len(_from_json_error(json.dumps(fields)).one_line()) < 300


# -- files -------------------------------------------------------------------------------------


def test_write_head_is_atomic_and_round_trips(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    path = tmp_path / "run" / "head.json"
    first = _head(key)
    write_head(path, first)
    assert read_head(path) == first
    second = _head(key, tree_size=4, root=merkle_root([b"a", b"b", b"c", b"d"]))
    write_head(path, second)
    assert path.read_text(encoding="utf-8") == second.to_json()
    assert read_head(path) == second
    assert verify_head(read_head(path), key.public_key())
    assert [p.name for p in path.parent.iterdir()] == ["head.json"]


def test_write_head_leaves_no_tmp_and_old_head_when_the_write_fails(
    tmp_path: Path, key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "head.json"
    write_head(path, _head(key))
    before = path.read_bytes()

    def boom(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_head(path, _head(key, tree_size=9))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["head.json"]


def test_read_head_missing_and_malformed(tmp_path: Path) -> None:
    path = tmp_path / "head.json"
    with pytest.raises(AuditError) as info:
        read_head(path)
    assert info.value.one_line() == f"{path}: no signed head"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(AuditError) as bad:
        read_head(path)
    assert bad.value.one_line().startswith(f"{path}:")
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(AuditError) as binary:
        read_head(path)
    assert str(path) in binary.value.one_line()

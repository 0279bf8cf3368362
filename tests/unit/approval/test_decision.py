"""Signed review decisions: any changed field, or a swapped key, breaks the signature."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from guarded_rl.approval.decision import DOMAIN, SignedDecision, sign_decision
from guarded_rl.approval.reviewers import fingerprint_of, raw_public_key

ORIGIN = "guarded-rl/run-1"
CANDIDATE = "c" * 64
NOW = 1_700_000_000.25


def _sign(key: Ed25519PrivateKey, **overrides: Any) -> SignedDecision:
    args: dict[str, Any] = {
        "origin": ORIGIN,
        "proposal_id": "u3",
        "candidate_sha256": CANDIDATE,
        "decision": "approve",
        "note": "looks fine",
        "now": NOW,
    }
    args.update(overrides)
    return sign_decision(key, **args)


def _with_body(signed: SignedDecision, **changes: Any) -> SignedDecision:
    return signed.model_copy(update={"body": signed.body.model_copy(update=changes)})


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def other() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_signed_decision_verifies_and_names_its_key(key: Ed25519PrivateKey) -> None:
    signed = _sign(key)
    raw = raw_public_key(key.public_key())
    assert signed.signature_valid()
    assert signed.public_key == raw.hex()
    assert signed.body.reviewer == fingerprint_of(raw)
    assert signed.body.time == NOW
    key.public_key().verify(bytes.fromhex(signed.signature), signed.body.message())
    assert signed.body.message().startswith(DOMAIN)


def test_time_is_rounded_to_milliseconds(key: Ed25519PrivateKey) -> None:
    signed = _sign(key, now=1_700_000_000.123456)
    assert signed.body.time == 1_700_000_000.123
    assert signed.signature_valid()


def test_json_round_trip_stays_valid(key: Ed25519PrivateKey) -> None:
    for signed in (_sign(key), _sign(key, decision="reject", note="ünïcode ✓", now=1.7e9)):
        again = SignedDecision.model_validate_json(signed.model_dump_json())
        assert again == signed
        assert again.signature_valid()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("note", "looks fine."),
        ("decision", "reject"),
        ("candidate_sha256", "d" * 64),
        ("proposal_id", "u4"),
        ("origin", "guarded-rl/run-2"),
        ("time", NOW + 0.001),
    ],
)
def test_any_changed_body_field_breaks_the_signature(
    key: Ed25519PrivateKey, field: str, value: object
) -> None:
    tampered = _with_body(_sign(key), **{field: value})
    assert getattr(tampered.body, field) == value
    assert not tampered.signature_valid()
    # also after a JSON round trip, which is how a decision reaches the desk
    assert not SignedDecision.model_validate_json(tampered.model_dump_json()).signature_valid()


def test_public_key_of_another_key_is_refused(
    key: Ed25519PrivateKey, other: Ed25519PrivateKey
) -> None:
    other_hex = raw_public_key(other.public_key()).hex()
    swapped = _sign(key).model_copy(update={"public_key": other_hex})
    assert not swapped.signature_valid()


def test_fingerprint_and_key_of_another_reviewer_with_the_old_signature_is_refused(
    key: Ed25519PrivateKey, other: Ed25519PrivateKey
) -> None:
    other_raw = raw_public_key(other.public_key())
    signed = _sign(key)
    renamed = _with_body(signed, reviewer=fingerprint_of(other_raw))
    assert not renamed.signature_valid()
    both = renamed.model_copy(update={"public_key": other_raw.hex()})
    assert not both.signature_valid()


def test_signature_from_another_key_over_the_same_body_is_refused(
    key: Ed25519PrivateKey, other: Ed25519PrivateKey
) -> None:
    signed = _sign(key)
    forged = signed.model_copy(update={"signature": other.sign(signed.body.message()).hex()})
    assert not forged.signature_valid()


def test_signature_without_the_domain_prefix_is_refused(key: Ed25519PrivateKey) -> None:
    signed = _sign(key)
    bare = signed.body.message()[len(DOMAIN) :]
    assert not signed.model_copy(update={"signature": key.sign(bare).hex()}).signature_valid()


def test_extra_field_is_refused(key: Ed25519PrivateKey) -> None:
    data = _sign(key).model_dump()
    with pytest.raises(ValidationError):
        SignedDecision.model_validate({**data, "approved_by": "admin"})
    with pytest.raises(ValidationError):
        SignedDecision.model_validate({**data, "body": {**data["body"], "extra": 1}})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("proposal_id", "3"),
        ("candidate_sha256", "C" * 64),
        ("decision", "maybe"),
        ("time", 0),
        ("reviewer", "rk-short"),
        ("note", "x" * 2001),
        ("origin", ""),
    ],
)
def test_malformed_body_is_refused(key: Ed25519PrivateKey, field: str, value: object) -> None:
    data = _sign(key).model_dump()
    with pytest.raises(ValidationError):
        SignedDecision.model_validate({**data, "body": {**data["body"], field: value}})

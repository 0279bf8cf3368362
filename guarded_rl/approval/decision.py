"""A reviewer's signed decision on one pending update.

The reviewer's Ed25519 key signs a domain-separated canonical JSON of the decision: which run
(its log origin), which proposal, the candidate weights' SHA-256, approve or reject, the note,
the time, and the reviewer's key fingerprint. A decision therefore cannot be moved to another
run or another candidate, and changing any field (the note included) breaks the signature.
"""

from __future__ import annotations

import time
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

from guarded_rl.approval.reviewers import fingerprint_of, raw_public_key
from guarded_rl.audit.log import canonical_json

DOMAIN = b"guarded-rl review decision v1\n"
MAX_NOTE = 2000


class DecisionBody(BaseModel):
    """What the reviewer signs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    origin: str = Field(..., min_length=1, description="The run's log origin: guarded-rl/<id>.")
    proposal_id: str = Field(..., pattern=r"^u\d+$")
    candidate_sha256: str = Field(..., pattern=r"^[0-9a-f]{64}$")
    decision: Literal["approve", "reject"]
    note: str = Field(..., max_length=MAX_NOTE)
    time: float = Field(..., gt=0)
    reviewer: str = Field(..., pattern=r"^rk-[0-9a-f]{16}$", description="Key fingerprint.")

    def message(self) -> bytes:
        return DOMAIN + canonical_json(self.model_dump()).encode()


class SignedDecision(BaseModel):
    """A decision with its signature and the public key that made it (what the log keeps)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    body: DecisionBody
    public_key: str = Field(..., pattern=r"^[0-9a-f]{64}$")
    signature: str = Field(..., pattern=r"^[0-9a-f]{128}$")

    def signature_valid(self) -> bool:
        """The signature verifies under `public_key`, and that key is the named reviewer's."""
        raw = bytes.fromhex(self.public_key)
        if fingerprint_of(raw) != self.body.reviewer:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(
                bytes.fromhex(self.signature), self.body.message()
            )
        except (InvalidSignature, ValueError):
            return False
        return True


def sign_decision(
    key: Ed25519PrivateKey,
    *,
    origin: str,
    proposal_id: str,
    candidate_sha256: str,
    decision: Literal["approve", "reject"],
    note: str,
    now: float | None = None,
) -> SignedDecision:
    raw = raw_public_key(key.public_key())
    body = DecisionBody(
        origin=origin,
        proposal_id=proposal_id,
        candidate_sha256=candidate_sha256,
        decision=decision,
        note=note,
        time=round(time.time() if now is None else now, 3),
        reviewer=fingerprint_of(raw),
    )
    return SignedDecision(body=body, public_key=raw.hex(), signature=key.sign(body.message()).hex())

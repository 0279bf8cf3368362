"""Replay inputs, encrypted per subject so that erasing a subject makes them unrecoverable.

Replaying an update needs exactly what the learner saw: token ids and rewards of every
sample in its batch. Those rows belong to the people whose feedback made them, so each row is
sealed with AES-256-GCM under a key of its subject. Erasure deletes the key (and the rows):
crypto-shredding. Any update whose batch held an erased subject's row is then reported as
not replayable, never silently replayed with a hole in its batch.

The tables (`replay_inputs`, `replay_batches`), the subject keys (shared with the feedback
store: one key per subject) and erasure belong to `database.py`; this module seals and opens.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from guarded_rl.consent.database import FeedbackDatabase
from guarded_rl.errors import AuditError
from guarded_rl.records import Batch, Sample


class ReplayInputsErased(AuditError):
    """The batch of an update held rows of a subject whose data was erased."""


class ReplayStore:
    """Sealed batches in the run's `feedback.sqlite`, one key per subject."""

    def __init__(self, path: str | Path, *, key_file: str | Path | None = None) -> None:
        """`key_file`: the store key, as for `SQLiteFeedbackStore` (the same file: subject keys
        are stored wrapped by it). Opening the store checks the key before anything else."""
        self.path = str(path)
        self._file = FeedbackDatabase(path, key_file=key_file)
        self._db = self._file.connection

    def close(self) -> None:
        self._file.close()

    def store_batch(self, batch: Batch) -> None:
        """Seal every row of the batch under its subject's key (one transaction)."""
        rows = []
        keys: dict[str, bytes | None] = {}  # unwrapped once per subject and transaction
        with self._file.transaction():
            for position, (sample, reward, group) in enumerate(
                zip(batch.samples, batch.rewards, batch.group_keys, strict=True)
            ):
                if sample.subject not in keys:
                    keys[sample.subject] = self._file.subject_key(sample.subject, create=True)
                key = keys[sample.subject]
                if key is None:  # never: create=True always yields a key
                    raise AuditError("no key for subject", field="subject")
                plain = json.dumps(
                    {
                        "sample_id": sample.sample_id,
                        "prompt_ids": list(sample.prompt_ids),
                        "completion_ids": list(sample.completion_ids),
                        "reward": reward,
                        "group_key": group,
                    },
                    separators=(",", ":"),
                ).encode()
                nonce = os.urandom(12)
                sealed = AESGCM(key).encrypt(nonce, plain, _aad(batch.cycle, position))
                rows.append((batch.cycle, position, sample.subject, nonce, sealed))
            self._db.executemany("INSERT INTO replay_inputs VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute(
                "INSERT OR REPLACE INTO replay_batches VALUES (?, ?)", (batch.cycle, len(rows))
            )

    def load_batch(self, cycle: int) -> Batch:
        """The batch of `cycle` as the learner saw it, or `ReplayInputsErased`."""
        size_row = self._db.execute(
            "SELECT size FROM replay_batches WHERE cycle = ?", (cycle,)
        ).fetchone()
        if size_row is None:
            raise AuditError("no replay inputs recorded for this update", field="cycle", got=cycle)
        rows = self._db.execute(
            "SELECT position, subject, nonce, ciphertext FROM replay_inputs WHERE cycle = ? "
            "ORDER BY position",
            (cycle,),
        ).fetchall()
        keys = {s: self._file.subject_key(s, create=False) for s in {r[1] for r in rows}}
        erased = {subject for subject, key in keys.items() if key is None}
        if len(rows) != size_row[0] or erased:
            missing = size_row[0] - len(rows)
            raise ReplayInputsErased(
                f"inputs erased under a consent revocation ({len(erased) or missing} "
                "subject(s) or row(s) gone)",
                field="cycle",
                got=cycle,
            )
        samples, rewards, groups = [], [], []
        for position, subject, nonce, sealed in rows:
            key = keys[subject]
            if key is None:
                raise ReplayInputsErased("inputs erased", field="cycle", got=cycle)
            try:
                opened = AESGCM(key).decrypt(bytes(nonce), bytes(sealed), _aad(cycle, position))
            except InvalidTag:
                raise AuditError(
                    "a sealed replay row does not authenticate (changed or moved)",
                    field="cycle",
                    got=cycle,
                ) from None
            plain = json.loads(opened)
            samples.append(
                Sample(
                    sample_id=plain["sample_id"],
                    cycle=cycle,
                    subject=subject,
                    prompt="",
                    text="",
                    prompt_ids=tuple(plain["prompt_ids"]),
                    completion_ids=tuple(plain["completion_ids"]),
                )
            )
            rewards.append(float(plain["reward"]))
            groups.append(plain["group_key"])
        return Batch(cycle, tuple(samples), tuple(rewards), tuple(groups), ())

    def erase_subject(self, subject: str) -> int:
        """Erase a subject (their feedback and consent too: one erasure for the whole file,
        `FeedbackDatabase.erase_subject`); returns the replay rows removed."""
        return self._file.erase_subject(subject).replay_rows


def _aad(cycle: int, position: int) -> bytes:
    """Binds each sealed row to its place, so rows cannot be swapped between batches."""
    return f"guarded-rl/replay/{cycle}/{position}".encode()

"""The default feedback store: the consent ledger and feedback in the run's `feedback.sqlite`.

The file itself (its tables, opening it, the per-subject keys and erasure) is owned by
`database.py`; this module holds the SQL of the ledger and feedback tables: `subjects` (the
external id, sealed), `consent` (the ledger), `items` (what was shown, so imported feedback
can only name real items) and `feedback` (pseudonym, item, reward, purposes at collection,
personal fields sealed under the subject's key, the one `ReplayStore` seals replay inputs
under).

Writes run in `BEGIN IMMEDIATE` transactions, so several processes can record into one store
at once; consent is re-checked inside the same transaction that writes, so a revocation
cannot slip between the check and the write. Erasure deletes the subject's rows and key in one
transaction with `secure_delete` on and then truncates the WAL, so no copy of the plaintext or
the key stays in the run directory.
"""

from __future__ import annotations

import hmac
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from hashlib import sha256
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from guarded_rl.consent.database import FeedbackDatabase
from guarded_rl.consent.store import (
    FAIRNESS,
    PURPOSES,
    TRAINING,
    ConsentRecord,
    Erasure,
    StoredFeedback,
)
from guarded_rl.errors import AuditError, ConsentError, InputError
from guarded_rl.records import Feedback

_CHUNK = 500  # bound parameters per IN (...) query


class SQLiteFeedbackStore:
    """Consent ledger and feedback in one SQLite file (`:memory:` for tests)."""

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        timeout: float = 30.0,
        key_file: str | Path | None = None,
    ) -> None:
        """`key_file`: the store key that wraps every key inside the database (a run's is
        recorded in `run.toml`; default `<path>.key`, created with a new store)."""
        self.path = str(path)
        self._file = FeedbackDatabase(path, timeout=timeout, key_file=key_file)
        self._db = self._file.connection
        self._write = self._file.transaction
        self._pseudonym_key = self._file.pseudonym_key

    @property
    def store_id(self) -> str | None:
        """A random id given to the store at creation: `run_started` records it, so
        `audit verify` notices a swapped store."""
        return self._file.store_id

    def close(self) -> None:
        self._file.close()

    # -- subjects and consent ---------------------------------------------------------------

    def pseudonym(self, user_id: str) -> str:
        """Stable per store, not invertible without the store's key: `p-` + 32 hex digits."""
        digest = hmac.new(self._pseudonym_key, user_id.encode("utf-8"), sha256).hexdigest()
        return "p-" + digest[:32]

    def grant(self, user_id: str, purposes: Sequence[str], *, text_sha256: str) -> str:
        """Record consent for `purposes` under a consent text version; returns the pseudonym.
        The external id is kept only sealed under the subject's key (for access requests)."""
        if not user_id:
            raise InputError("empty user id", field="user_id", got=user_id)
        return self._grant(self.pseudonym(user_id), purposes, text_sha256, user_id)

    def grant_pseudonym(self, subject: str, purposes: Sequence[str], *, text_sha256: str) -> str:
        """Like `grant`, for callers whose own system already pseudonymizes people: no id
        mapping is kept, so `consent show/export --user` cannot find them."""
        if not subject:
            raise InputError("empty pseudonym", field="subject", got=subject)
        return self._grant(subject, purposes, text_sha256, None)

    def _grant(
        self, subject: str, purposes: Sequence[str], text_sha256: str, user_id: str | None
    ) -> str:
        _known_purposes(purposes)
        now = time.time()
        with self._write() as db:
            key = self._key(subject, create=True)
            if key is None:  # create=True always yields a key
                raise AuditError("no key for subject", field="subject")
            if user_id is not None:
                nonce = os.urandom(12)
                sealed = AESGCM(key).encrypt(nonce, user_id.encode("utf-8"), _id_aad(subject))
                db.execute(
                    "INSERT OR REPLACE INTO subjects VALUES (?, ?, ?, ?)",
                    (subject, nonce, sealed, now),
                )
            db.executemany(
                "INSERT INTO consent VALUES (?, ?, ?, ?, NULL) ON CONFLICT (subject, purpose) "
                "DO UPDATE SET text_sha256 = excluded.text_sha256, "
                "granted_at = excluded.granted_at, revoked_at = NULL",
                [(subject, p, text_sha256, now) for p in dict.fromkeys(purposes)],
            )
        return subject

    def revoke(self, subject: str, purposes: Sequence[str] | None = None) -> list[str]:
        """Withdraw consent (all purposes by default); returns the purposes withdrawn."""
        if purposes is not None:
            _known_purposes(purposes)
        with self._write() as db:
            current = [
                p
                for (p,) in db.execute(
                    "SELECT purpose FROM consent WHERE subject = ? AND revoked_at IS NULL",
                    (subject,),
                )
            ]
            withdrawn = [p for p in current if purposes is None or p in purposes]
            db.executemany(
                "UPDATE consent SET revoked_at = ? WHERE subject = ? AND purpose = ?",
                [(time.time(), subject, p) for p in withdrawn],
            )
        return sorted(withdrawn)

    def consents(self, subject: str) -> list[ConsentRecord]:
        rows = self._db.execute(
            "SELECT purpose, text_sha256, granted_at, revoked_at FROM consent WHERE subject = ? "
            "ORDER BY purpose",
            (subject,),
        ).fetchall()
        return [ConsentRecord(*row) for row in rows]

    def consents_current(self, subject: str) -> list[str]:
        """The purposes this subject currently consents to."""
        return list(self.current_purposes([subject]).get(subject, ()))

    def has_consent(self, subject: str, purpose: str) -> bool:
        return bool(self._with_consent([subject], purpose))

    def known_subject(self, subject: str) -> bool:
        row = self._db.execute("SELECT 1 FROM consent WHERE subject = ?", (subject,)).fetchone()
        return row is not None

    def user_id_of(self, subject: str) -> str | None:
        """The external id behind a pseudonym, or None once the subject is erased."""
        row = self._db.execute(
            "SELECT nonce, sealed_id FROM subjects WHERE subject = ?", (subject,)
        ).fetchone()
        key = self._key(subject, create=False)
        if row is None or key is None:
            return None
        return _open(key, row[0], row[1], _id_aad(subject)).decode("utf-8")

    def _with_consent(self, subjects: Sequence[str], purpose: str) -> set[str]:
        return {s for s, granted in self.current_purposes(subjects).items() if purpose in granted}

    def current_purposes(self, subjects: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Subject → purposes with a current consent (subjects with none are left out)."""
        found: dict[str, list[str]] = {}
        unique = list(dict.fromkeys(subjects))
        for i in range(0, len(unique), _CHUNK):
            chunk = unique[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for subject, purpose in self._db.execute(
                f"SELECT subject, purpose FROM consent WHERE revoked_at IS NULL "
                f"AND subject IN ({marks}) ORDER BY purpose",
                chunk,
            ):
                found.setdefault(subject, []).append(purpose)
        return {s: tuple(p) for s, p in found.items()}

    def _key(self, subject: str, *, create: bool) -> bytes | None:
        return self._file.subject_key(subject, create=create)

    # -- items and feedback -----------------------------------------------------------------

    def register_items(self, item_ids: Sequence[str], *, cycle: int | None) -> None:
        """Items people were shown: imported feedback may only name these."""
        now = time.time()
        with self._write() as db:
            db.executemany(
                "INSERT OR IGNORE INTO items VALUES (?, ?, ?)", [(i, cycle, now) for i in item_ids]
            )

    def known_items(self, item_ids: Sequence[str]) -> set[str]:
        return self._present("items", "item_id", item_ids)

    def existing_feedback_ids(self, feedback_ids: Sequence[str]) -> set[str]:
        return self._present("feedback", "feedback_id", feedback_ids)

    def _present(self, table: str, column: str, values: Sequence[str]) -> set[str]:
        found: set[str] = set()
        unique = list(dict.fromkeys(values))
        for i in range(0, len(unique), _CHUNK):
            chunk = unique[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT {column} FROM {table} WHERE {column} IN ({marks})"
            found.update(v for (v,) in self._db.execute(query, chunk))
        return found

    def record(
        self, feedback: Sequence[Feedback], *, purpose: str, cycle: int
    ) -> tuple[list[Feedback], int]:
        """The guard's path: store what consent covers, refuse (count, never store) the rest.

        The group attribute is kept only for subjects with `fairness-analysis` consent."""
        if not purpose:
            raise ConsentError("empty consent purpose", field="consent.purpose", got=purpose)
        now = time.time()
        with self._write():
            granted = self.current_purposes([f.subject for f in feedback])
            accepted = [
                StoredFeedback(
                    f.sample_id, f.subject, f.sample_id, cycle, f.reward, f.source,
                    granted[f.subject], now, group=f.group or None,
                )
                for f in feedback
                if purpose in granted.get(f.subject, ())
            ]  # fmt: skip
            try:
                self._insert(accepted)
            except sqlite3.IntegrityError:
                raise InputError(
                    "feedback for this sample is already stored",
                    field="sample_id",
                    expected="each sample rated once",
                ) from None
        kept = {r.feedback_id for r in accepted}
        return [f for f in feedback if f.sample_id in kept], len(feedback) - len(kept)

    def store_feedback(self, rows: Sequence[StoredFeedback], *, purpose: str = TRAINING) -> int:
        """Store all rows in one transaction or none: a row whose subject lacks a current
        consent for `purpose` raises `ConsentError`, a duplicate id `InputError`. Groups of
        subjects without `fairness-analysis` consent are dropped; returns how many were."""
        with self._write():
            allowed = self._with_consent([r.subject for r in rows], purpose)
            for r in rows:
                if r.subject not in allowed:
                    raise ConsentError(
                        f"no current '{purpose}' consent; feedback refused",
                        field="subject",
                        got=r.subject,
                    )
            try:
                return self._insert(rows)
            except sqlite3.IntegrityError:
                raise InputError(
                    "feedback id already stored", field="id", expected="a new feedback id"
                ) from None

    def _insert(self, rows: Sequence[StoredFeedback]) -> int:
        """Seal personal fields and insert; inside a write transaction. Returns groups dropped."""
        fair = self._with_consent([r.subject for r in rows if r.group is not None], FAIRNESS)
        dropped = 0
        values = []
        for r in rows:
            group = r.group if r.subject in fair else None
            dropped += r.group is not None and group is None
            nonce: bytes | None = None
            personal: bytes | None = None
            if r.comment is not None or group is not None:
                key = self._key(r.subject, create=True)
                if key is None:
                    raise AuditError("no key for subject", field="subject")
                nonce = os.urandom(12)
                plain = json.dumps({"comment": r.comment, "group": group}).encode("utf-8")
                personal = AESGCM(key).encrypt(nonce, plain, _row_aad(r.subject, r.feedback_id))
            values.append(
                (
                    r.feedback_id, r.subject, r.item_id, r.cycle, r.reward, r.source,
                    ",".join(r.purposes), r.recorded_at, nonce, personal,
                )
            )  # fmt: skip
        self._db.executemany("INSERT INTO feedback VALUES (?,?,?,?,?,?,?,?,?,?)", values)
        return dropped

    def training_feedback(self, cycle: int, *, purpose: str = TRAINING) -> list[Feedback]:
        """A cycle's feedback whose subjects' consent is valid now (when the batch is built);
        the group is opened only under a current `fairness-analysis` consent, else ''."""
        rows = self.batch_rows(purpose=purpose, cycle=cycle, with_group=True)
        return [
            Feedback(r.item_id, r.subject, r.reward, _source(r.source), r.group or "") for r in rows
        ]

    def batch_rows(
        self,
        *,
        purpose: str = TRAINING,
        cycle: int | None = None,
        limit: int | None = None,
        with_group: bool = False,
    ) -> list[StoredFeedback]:
        """Rows of subjects with a current consent for `purpose`, oldest first."""
        query = (
            "SELECT f.feedback_id, f.subject, f.item_id, f.cycle, f.reward, f.source, "
            "f.purposes, f.recorded_at, f.nonce, f.personal, fc.subject IS NOT NULL "
            "FROM feedback f JOIN consent c ON c.subject = f.subject AND c.purpose = ? "
            "AND c.revoked_at IS NULL "
            "LEFT JOIN consent fc ON fc.subject = f.subject AND fc.purpose = ? "
            "AND fc.revoked_at IS NULL"
        )
        params: list[object] = [purpose, FAIRNESS]
        if cycle is not None:
            query += " WHERE f.cycle = ?"
            params.append(cycle)
        query += " ORDER BY f.recorded_at, f.feedback_id"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        out = []
        keys: dict[str, bytes | None] = {}
        for *head, nonce, personal, fair in self._db.execute(query, params):
            group = None
            if with_group and fair and personal is not None:
                subject = head[1]
                if subject not in keys:
                    keys[subject] = self._key(subject, create=False)
                key = keys[subject]
                if key is not None:
                    opened = json.loads(_open(key, nonce, personal, _row_aad(subject, head[0])))
                    group = opened.get("group")
            out.append(_stored(head, group=group))
        return out

    def subject_rows(self, subject: str) -> list[StoredFeedback]:
        """Every row of a subject with its personal fields opened (for access and export)."""
        key = self._key(subject, create=False)
        rows = self._db.execute(
            "SELECT feedback_id, subject, item_id, cycle, reward, source, purposes, recorded_at,"
            " nonce, personal FROM feedback WHERE subject = ? ORDER BY recorded_at, feedback_id",
            (subject,),
        ).fetchall()
        out = []
        for *head, nonce, personal in rows:
            comment = group = None
            if personal is not None and key is not None:
                opened = json.loads(_open(key, nonce, personal, _row_aad(subject, head[0])))
                comment, group = opened.get("comment"), opened.get("group")
            out.append(_stored(head, comment=comment, group=group))
        return out

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def ledger(self) -> list[dict[str, Any]]:
        """Every person on record, by pseudonym: purposes current and revoked, feedback rows
        held. Counts and pseudonyms only: nothing is decrypted."""
        people: dict[str, dict[str, Any]] = {}

        def person(subject: str) -> dict[str, Any]:
            return people.setdefault(
                subject, {"pseudonym": subject, "current": [], "revoked": [], "feedback_rows": 0}
            )

        for subject, purpose, revoked_at in self._db.execute(
            "SELECT subject, purpose, revoked_at FROM consent ORDER BY subject, purpose"
        ):
            person(subject)["current" if revoked_at is None else "revoked"].append(purpose)
        for subject, rows in self._db.execute(
            "SELECT subject, COUNT(*) FROM feedback GROUP BY subject"
        ):
            person(subject)["feedback_rows"] = int(rows)
        return [people[s] for s in sorted(people)]

    def items(self, *, cycle: int | None = None) -> list[dict[str, Any]]:
        """The items this store knows (what `feedback import` may rate), with the feedback
        rows held on each."""
        query = (
            "SELECT i.item_id, i.cycle, i.registered_at, COUNT(f.feedback_id) FROM items i "
            "LEFT JOIN feedback f ON f.item_id = i.item_id"
        )
        args: tuple[int, ...] = ()
        if cycle is not None:
            query += " WHERE i.cycle = ?"
            args = (cycle,)
        query += " GROUP BY i.item_id ORDER BY i.cycle, i.item_id"
        return [
            {"item_id": item, "cycle": c, "registered_at": at, "feedback_rows": int(n)}
            for item, c, at, n in self._db.execute(query, args)
        ]

    # -- erasure and retention --------------------------------------------------------------

    def trained_cycles(self, subject: str) -> list[int]:
        """Cycles whose training batch held a row of this subject (from the replay inputs)."""
        return self._file.trained_cycles(subject)

    def erase_subject(self, subject: str) -> Erasure:
        """Withdraw every consent of the subject and delete their feedback, sealed id, sealed
        replay inputs and key, all in one transaction (`FeedbackDatabase.erase_subject`)."""
        return self._file.erase_subject(subject)

    def purge_expired(self, retention_days: int, *, now: float | None = None) -> int:
        """Delete feedback recorded more than `retention_days` ago; returns how many rows."""
        cutoff = (time.time() if now is None else now) - retention_days * 86400.0
        with self._write() as db:
            removed = db.execute("DELETE FROM feedback WHERE recorded_at < ?", (cutoff,)).rowcount
        if removed:
            self.checkpoint()
        return int(removed)

    def checkpoint(self) -> None:
        """Truncate the WAL, so deleted rows do not survive in `feedback.sqlite-wal`."""
        self._file.checkpoint()


def _known_purposes(purposes: Sequence[str]) -> None:
    if not purposes:
        raise InputError("no purpose given", field="purpose", expected=", ".join(PURPOSES))
    for p in purposes:
        if p not in PURPOSES:
            raise InputError(
                "unknown purpose", field="purpose", got=p, expected=", ".join(PURPOSES)
            )


def _stored(
    head: Sequence[object], *, comment: str | None = None, group: str | None = None
) -> StoredFeedback:
    feedback_id, subject, item_id, cycle, reward, source, purposes, recorded_at = head
    return StoredFeedback(
        str(feedback_id), str(subject), str(item_id),
        None if cycle is None else int(cycle),  # type: ignore[call-overload]  # an SQLite row value, typed object
        float(reward), str(source),  # type: ignore[arg-type]  # an SQLite row value, typed object
        tuple(p for p in str(purposes).split(",") if p),
        float(recorded_at), comment, group,  # type: ignore[arg-type]  # an SQLite row value, typed object
    )  # fmt: skip


def _source(source: str) -> Literal["person", "penalty"]:
    return "penalty" if source == "penalty" else "person"


def _open(key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(bytes(nonce), bytes(sealed), aad)
    except InvalidTag:
        raise AuditError(
            "a sealed feedback field does not authenticate (changed or moved)",
            field="feedback.sqlite",
        ) from None


def _id_aad(subject: str) -> bytes:
    return f"guarded-rl/subject/{subject}".encode()


def _row_aad(subject: str, feedback_id: str) -> bytes:
    return f"guarded-rl/feedback/{subject}/{feedback_id}".encode()

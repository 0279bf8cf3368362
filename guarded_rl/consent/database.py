"""`feedback.sqlite`, owned in one place: its schema, opening it, the per-subject keys, erasure.

Two stores share the file: `SQLiteFeedbackStore` (consent ledger, items, feedback) and
`ReplayStore` (each update's batch, sealed). Both open it through `FeedbackDatabase`, so that
every table and index is created here under one schema version (`PRAGMA user_version`), every
connection has the same settings (WAL, `secure_delete`), a subject has exactly one AES-256 key
whichever store seals data under it, and erasing a subject removes their feedback, sealed id,
replay inputs and key in one transaction.

Tables: `store_secrets` (the pseudonym HMAC key, wrapped, and the store's random id),
`subject_keys` (one AES-256 key per subject, wrapped by the store key: a 0600 file outside the
database, `store_key.py`), `subjects` (the external id, sealed), `consent` (the ledger),
`items` (what was shown, so imported feedback can only name real items), `feedback`
(pseudonym, item, reward, purposes at collection, personal fields sealed), `replay_inputs`
(token ids, reward and group key of each batch row, sealed) and `replay_batches` (how many
rows each batch had, so a deleted row is noticed).

Schema versions: 0 is a store written before the version was recorded (the same tables; the
replay tables only once a replay store had opened it); 1 adds the index of replay inputs by
subject. Opening a store migrates it in the transaction that checks it; a store of a newer
version, or one with tables, columns, views or triggers this schema does not define, is
refused (a trigger could, say, quietly keep rows that erasure deletes).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from guarded_rl.consent.store import Erasure
from guarded_rl.consent.store_key import StoreKey, create_private_file, open_store_key
from guarded_rl.errors import AuditError, GuardedRLError, InputError

#: what `PRAGMA user_version` says of a store this code wrote
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS store_secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS subject_keys (subject TEXT PRIMARY KEY, key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (
    subject TEXT PRIMARY KEY, nonce BLOB NOT NULL, sealed_id BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS consent (
    subject TEXT NOT NULL, purpose TEXT NOT NULL, text_sha256 TEXT NOT NULL,
    granted_at REAL NOT NULL, revoked_at REAL, PRIMARY KEY (subject, purpose)
);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY, cycle INTEGER, registered_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    feedback_id TEXT PRIMARY KEY, subject TEXT NOT NULL, item_id TEXT NOT NULL,
    cycle INTEGER, reward REAL NOT NULL, source TEXT NOT NULL, purposes TEXT NOT NULL,
    recorded_at REAL NOT NULL, nonce BLOB, personal BLOB
);
CREATE INDEX IF NOT EXISTS feedback_by_subject ON feedback (subject);
CREATE INDEX IF NOT EXISTS feedback_by_cycle ON feedback (cycle);
CREATE INDEX IF NOT EXISTS feedback_by_time ON feedback (recorded_at);
CREATE TABLE IF NOT EXISTS replay_inputs (
    cycle INTEGER NOT NULL, position INTEGER NOT NULL, subject TEXT NOT NULL,
    nonce BLOB NOT NULL, ciphertext BLOB NOT NULL, PRIMARY KEY (cycle, position)
);
CREATE TABLE IF NOT EXISTS replay_batches (cycle INTEGER PRIMARY KEY, size INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS replay_inputs_by_subject ON replay_inputs (subject);
"""
PSEUDONYM_KEY = "pseudonym_hmac_sha256"
STORE_ID = "store_id"


def unusable_store(path: str, exc: sqlite3.Error) -> GuardedRLError:
    """SQLite's own words for a store it cannot use, with the file it is about."""
    if not isinstance(exc, sqlite3.OperationalError):  # "file is not a database", ...
        return AuditError(
            f"not a feedback store: {exc}",
            file=path,
            expected="the run's own feedback.sqlite",
        )
    return GuardedRLError(
        f"feedback store unusable: {exc}",
        file=path,
        expected="a store in a folder you may write (check the run directory's permissions)",
    )


def subject_key_label(subject: str) -> str:
    """What a wrapped subject key is bound to: a key moved to another subject's row fails."""
    return f"subject_key:{subject}"


class FeedbackDatabase:
    """One connection to `feedback.sqlite` (`:memory:` for tests), checked and migrated."""

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        timeout: float = 30.0,
        key_file: str | Path | None = None,
    ) -> None:
        """`key_file`: the store key that wraps every key inside the database (a run's is
        recorded in `run.toml`; default `<path>.key`, created with a new store). The schema check,
        the migration and the key check share one transaction: the wrong key or none fails
        closed with nothing written."""
        self.path = str(path)
        if self.path != ":memory:":
            create_private_file(Path(self.path))  # 0600 before SQLite writes a byte
        try:
            self.connection = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except sqlite3.OperationalError as exc:
            raise InputError(
                f"cannot open the feedback store ({exc})",
                file=self.path,
                expected="a writable file in an existing directory",
            ) from None
        try:
            self._prepare(timeout, key_file)
        except sqlite3.Error as exc:  # a read-only folder or file, a full disk, not a database
            self.connection.close()
            raise unusable_store(self.path, exc) from None
        except BaseException:
            self.connection.close()
            raise

    def _prepare(self, timeout: float, key_file: str | Path | None) -> None:
        db = self.connection
        db.execute("PRAGMA secure_delete = ON")  # deleted rows are zeroed, not left behind
        if self.path != ":memory:":
            self._wal(timeout)
            db.execute("PRAGMA synchronous = NORMAL")
        with self.transaction():
            self._check_and_migrate()
            wrapped = self.secret(PSEUDONYM_KEY)
            if wrapped is None and db.execute("SELECT 1 FROM subject_keys LIMIT 1").fetchone():
                raise AuditError(  # a new key would silently give everybody a new pseudonym
                    "the feedback store holds people's keys but not its pseudonym key",
                    file=self.path,
                    field="store_secrets",
                    expected="the run's own feedback.sqlite, as guarded-rl left it",
                )
            self._store_key: StoreKey = open_store_key(
                self.path, Path(key_file) if key_file else None, new_store=wrapped is None
            )
            if wrapped is None:
                wrapped = self._store_key.wrap(os.urandom(32), PSEUDONYM_KEY)
                db.execute("INSERT INTO store_secrets VALUES (?, ?)", (PSEUDONYM_KEY, wrapped))
                db.execute(
                    "INSERT OR IGNORE INTO store_secrets VALUES (?, ?)",
                    (STORE_ID, os.urandom(16).hex().encode()),
                )
        self.pseudonym_key = self._store_key.unwrap(wrapped, PSEUDONYM_KEY, store=self.path)

    def _wal(self, timeout: float) -> None:
        """Switch to WAL; processes opening a new file together may briefly see it locked
        (the busy handler does not cover the switch), so retry until `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.connection.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _check_and_migrate(self) -> None:
        """Refuse what this schema does not define, then create what is missing (inside the
        opening transaction: a store is migrated whole or not at all)."""
        db = self.connection
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if not 0 <= version <= SCHEMA_VERSION:
            raise AuditError(
                "feedback store of an unknown schema version (written by a newer guarded-rl?)",
                file=self.path,
                field="user_version",
                got=version,
                expected=f"at most {SCHEMA_VERSION}",
            )
        expected = _reference()
        for kind, name in db.execute("SELECT type, name FROM sqlite_master"):
            if name.startswith("sqlite_") and kind in ("table", "index"):
                continue  # SQLite's own (auto-indexes, statistics)
            if (kind, name) not in expected:
                raise AuditError(
                    f"the feedback store holds a {kind} its schema does not define",
                    file=self.path,
                    field=kind,
                    got=name,
                    expected="only the tables and indexes guarded-rl creates",
                )
            if kind == "table" and _columns(db, name) != expected[(kind, name)]:
                raise AuditError(
                    "a table of the feedback store has other columns than its schema",
                    file=self.path,
                    field="table",
                    got=name,
                    expected=", ".join(c[0] for c in expected[(kind, name)]),
                )
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        if version < SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self.connection.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """`BEGIN IMMEDIATE`: one writer at a time across processes, and what a transaction
        reads stays true until it commits (consent checks, key look-ups)."""
        db = self.connection
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:  # SQLite may have rolled back already (a full disk, ...)
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def secret(self, name: str) -> bytes | None:
        row = self.connection.execute(
            "SELECT value FROM store_secrets WHERE name = ?", (name,)
        ).fetchone()
        return bytes(row[0]) if row is not None else None

    @property
    def store_id(self) -> str | None:
        """A random id given to the store at creation: `run_started` records it, so
        `audit verify` notices a swapped store."""
        value = self.secret(STORE_ID)
        return value.decode("ascii", "replace") if value is not None else None

    # -- per-subject keys -------------------------------------------------------------------

    def subject_key(self, subject: str, *, create: bool) -> bytes | None:
        """The subject's AES-256 key, or None once erased. `create` makes a missing one; only
        inside `transaction()`, so a key and what is sealed under it commit together and two
        writers cannot each make one."""
        row = self.connection.execute(
            "SELECT key FROM subject_keys WHERE subject = ?", (subject,)
        ).fetchone()
        if row is not None:
            return self._store_key.unwrap(
                bytes(row[0]), subject_key_label(subject), store=self.path
            )
        if not create:
            return None
        if not self.connection.in_transaction:
            raise AuditError(
                "a subject key is made only inside a write transaction",
                field="subject",
                got=subject,
            )
        key = AESGCM.generate_key(bit_length=256)
        wrapped = self._store_key.wrap(key, subject_key_label(subject))
        self.connection.execute("INSERT INTO subject_keys VALUES (?, ?)", (subject, wrapped))
        return key

    # -- erasure ----------------------------------------------------------------------------

    def trained_cycles(self, subject: str) -> list[int]:
        """Cycles whose training batch held a row of this subject (from the replay inputs)."""
        return [
            c
            for (c,) in self.connection.execute(
                "SELECT DISTINCT cycle FROM replay_inputs WHERE subject = ? ORDER BY cycle",
                (subject,),
            )
        ]

    def erase_subject(self, subject: str) -> Erasure:
        """Withdraw every consent of the subject and delete their feedback, sealed id, sealed
        replay inputs and key, in one transaction: all of it or (on any failure) none. With
        the key gone, any surviving copy of their ciphertext is unreadable. The withdrawn
        consent rows stay: they show when consent ended."""
        try:
            with self.transaction() as db:
                trained = tuple(self.trained_cycles(subject))
                db.execute(
                    "UPDATE consent SET revoked_at = ? WHERE subject = ? AND revoked_at IS NULL",
                    (time.time(), subject),
                )
                feedback = db.execute("DELETE FROM feedback WHERE subject = ?", (subject,))
                replay = db.execute("DELETE FROM replay_inputs WHERE subject = ?", (subject,))
                db.execute("DELETE FROM subjects WHERE subject = ?", (subject,))
                keys = db.execute("DELETE FROM subject_keys WHERE subject = ?", (subject,))
                erasure = Erasure(
                    subject, feedback.rowcount, replay.rowcount, keys.rowcount > 0, trained
                )
        except sqlite3.Error as exc:
            raise AuditError(
                f"erasure failed and was rolled back, nothing was erased ({exc})",
                file=self.path,
                field="subject",
                got=subject,
            ) from None
        self.checkpoint()
        return erasure

    def checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it, so deleted plaintext and keys do not
        survive in `feedback.sqlite-wal`. Raises if another connection keeps it busy."""
        if self.path == ":memory:":
            return
        busy, _, _ = self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise AuditError(
                "the feedback store is in use by another process; erased data may remain in "
                "its write-ahead log until that process closes it",
                field="feedback.sqlite",
                got=self.path,
            )


Columns = tuple[tuple[str, str, int, int], ...]


def _columns(db: sqlite3.Connection, table: str) -> Columns:
    """Name, type, not-null and primary-key position of each column, in order."""
    rows = db.execute('SELECT name, type, "notnull", pk FROM pragma_table_info(?)', (table,))
    return tuple((str(n), str(t), int(nn), int(pk)) for n, t, nn, pk in rows)


@cache
def _reference() -> dict[tuple[str, str], Columns]:
    """Every object the schema defines, with the columns of each table (from a scratch
    in-memory database, so the check can never disagree with the DDL above)."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(_SCHEMA)
        return {
            (kind, name): _columns(db, name) if kind == "table" else ()
            for kind, name in db.execute("SELECT type, name FROM sqlite_master")
        }
    finally:
        db.close()

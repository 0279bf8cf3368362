"""`feedback import`: people's ratings from a JSONL file into a run's feedback store.

Each line is one `ImportedFeedback` object. Every line is checked before anything is written:
the schema (finite reward in range, known purposes including training, bounded personal
fields), a feedback id new to the file and to the store, an item the run actually showed, and
a current training consent of the person (looked up by pseudonym). All good rows are then
stored in one transaction, so an import stores everything it accepted or nothing. Comment
and group are sealed by the store; the group only under a fairness-analysis consent.

The audit entry an import writes names no person: the file's SHA-256, counts and the
refused line numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
from guarded_rl.consent.store import (
    MAX_COMMENT_CHARS,
    MAX_GROUP_CHARS,
    PURPOSES,
    REWARD_RANGE,
    TRAINING,
    StoredFeedback,
)
from guarded_rl.errors import GuardedRLError, InputError
from guarded_rl.jsonl import JsonLineError, loads_line

MAX_ID_CHARS = 200
#: how far `recorded_at` may lie ahead of this machine's clock (a later time would keep the
#: row out of reach of the retention purge)
MAX_CLOCK_SKEW_S = 300.0
#: fields whose values are personal or may be long: never echoed in an error
_UNECHOED = frozenset({"user_id", "comment", "group"})
_MAX_ECHO_CHARS = 60


class ImportedFeedback(BaseModel):
    """One line of an import file."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    id: str = Field(..., min_length=1, max_length=MAX_ID_CHARS, description="Feedback id.")
    user_id: str = Field(
        ..., min_length=1, max_length=MAX_ID_CHARS, description="The person's external id."
    )
    item_id: str = Field(..., description="An item shown in this run.")
    reward: float = Field(..., ge=REWARD_RANGE[0], le=REWARD_RANGE[1], allow_inf_nan=False)
    purposes: list[str] = Field(..., min_length=1, description="Purposes it was collected for.")
    comment: str | None = Field(None, max_length=MAX_COMMENT_CHARS)
    group: str | None = Field(None, max_length=MAX_GROUP_CHARS)
    recorded_at: float | None = Field(None, ge=0.0, description="Unix seconds; default now.")

    @field_validator("purposes")
    @classmethod
    def _known_purposes(cls, purposes: list[str]) -> list[str]:
        for p in purposes:
            if p not in PURPOSES:
                raise ValueError(f"unknown purpose {p!r}")
        if TRAINING not in purposes:
            raise ValueError(f"the purposes must include {TRAINING!r}")
        return list(dict.fromkeys(purposes))

    @field_validator("comment", "group")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("recorded_at")
    @classmethod
    def _not_in_future(cls, value: float | None) -> float | None:
        if value is not None and value > time.time() + MAX_CLOCK_SKEW_S:
            raise ValueError("recorded_at lies in the future (milliseconds instead of seconds?)")
        return value


_EXPECTED = {
    "id": f"a string of 1 to {MAX_ID_CHARS} characters, new to the file and the run",
    "user_id": f"a string of 1 to {MAX_ID_CHARS} characters",
    "item_id": "the id of an item shown in this run",
    "reward": f"a finite number from {REWARD_RANGE[0]:g} to {REWARD_RANGE[1]:g}",
    "purposes": f"a list of purposes including {TRAINING!r}, from: {', '.join(PURPOSES)}",
    "comment": f"a string of at most {MAX_COMMENT_CHARS} characters, or null",
    "group": f"a string of at most {MAX_GROUP_CHARS} characters, or null",
    "recorded_at": "unix seconds (not in the future), or null for now",
}


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did: rows stored, lines refused (line number, reason), groups dropped
    (no fairness-analysis consent), distinct people stored for, and the file's SHA-256."""

    stored: int
    refused: list[tuple[int, str]]
    groups_dropped: int
    subjects: int
    file_sha256: str


@dataclass(frozen=True, slots=True)
class _Problem:
    """Why one line is refused; renders without the file for reports, with it for errors."""

    message: str
    field: str | None = None
    got: Any = None
    expected: str | None = None

    def error(self, file: str | None = None) -> InputError:
        return InputError(
            self.message, file=file, field=self.field, got=self.got, expected=self.expected
        )

    def reason(self) -> str:
        return self.error().one_line()


def import_feedback(store: SQLiteFeedbackStore, path: Path, *, skip_invalid: bool) -> ImportReport:
    """Check every line of `path`, then store the good rows in one transaction.

    Without `skip_invalid` the first bad line raises `InputError` (file `PATH:LINE`) and the
    store is left unchanged; with it, the good lines are stored and the bad ones reported."""
    path = Path(path)
    raw = _read(path)
    text = _decode(raw, path)
    now = time.time()
    problems: dict[int, _Problem] = {}
    parsed: list[tuple[int, ImportedFeedback]] = []
    first_line_of: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        entry = _parse(line)
        if isinstance(entry, _Problem):
            problems[number] = entry
            continue
        if entry.id in first_line_of:
            problems[number] = _Problem(
                f"duplicate feedback id (first on line {first_line_of[entry.id]})",
                field="id",
                got=_echo(entry.id),
                expected="an id used once per file",
            )
            continue
        first_line_of[entry.id] = number
        parsed.append((number, entry))

    stored_ids = store.existing_feedback_ids([e.id for _, e in parsed])
    items = store.known_items([e.item_id for _, e in parsed])
    subject_of = {e.user_id: store.pseudonym(e.user_id) for _, e in parsed}
    current = store.current_purposes(list(subject_of.values()))  # one query per 500 people
    granted = {s: set(current.get(s, ())) for s in set(subject_of.values())}
    rows: list[StoredFeedback] = []
    for number, e in parsed:
        subject = subject_of[e.user_id]
        if e.id in stored_ids:
            problems[number] = _Problem(
                "feedback id already stored in this run",
                field="id",
                got=_echo(e.id),
                expected="a new feedback id",
            )
        elif e.item_id not in items:
            problems[number] = _Problem(
                "unknown item", field="item_id", got=_echo(e.item_id), expected=_EXPECTED["item_id"]
            )
        elif TRAINING not in granted[subject]:
            problems[number] = _Problem(
                f"no current {TRAINING!r} consent for this user; feedback refused",
                field="user_id",
                expected=f"a user who granted {TRAINING!r} consent in this run",
            )
        elif missing := sorted(set(e.purposes) - granted[subject]):
            problems[number] = _Problem(
                f"claims purposes this user has no current consent for: {', '.join(missing)}",
                field="purposes",
                expected="only purposes granted in this run's consent ledger",
            )
        else:
            rows.append(
                StoredFeedback(
                    feedback_id=e.id,
                    subject=subject,
                    item_id=e.item_id,
                    cycle=None,
                    reward=e.reward,
                    source="person",
                    purposes=tuple(e.purposes),
                    recorded_at=now if e.recorded_at is None else e.recorded_at,
                    comment=e.comment,
                    group=e.group,
                )
            )

    if problems and not skip_invalid:
        first = min(problems)
        raise problems[first].error(f"{path}:{first}")
    groups_dropped = 0
    if rows:
        try:
            groups_dropped = store.store_feedback(rows)
        except GuardedRLError as exc:  # consent revoked or id stored since the checks above
            raise type(exc)(
                f"{exc.message}; nothing was stored (the store changed during the import)",
                file=str(path),
                field=exc.field,
                got=exc.got,
                expected=exc.expected,
            ) from None
    return ImportReport(
        stored=len(rows),
        refused=[(n, problems[n].reason()) for n in sorted(problems)],
        groups_dropped=groups_dropped,
        subjects=len({r.subject for r in rows}),
        file_sha256=sha256(raw).hexdigest(),
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", file=str(path), expected="a JSONL feedback file") from None
    except IsADirectoryError:
        raise InputError(
            "is a directory", file=str(path), expected="a JSONL feedback file"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", file=str(path)) from None


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            "not UTF-8 text", file=f"{path}:{line}", expected="a UTF-8 JSONL file"
        ) from None


def _parse(line: str) -> ImportedFeedback | _Problem:
    try:
        obj = loads_line(line)
    except JsonLineError as exc:
        return _Problem(exc.message)
    if not isinstance(obj, dict):
        return _Problem(
            f"not a JSON object (a {type(obj).__name__})",
            expected="one JSON object per line",
        )
    try:
        return ImportedFeedback.model_validate(obj)
    except ValidationError as exc:
        return _schema_problem(exc)


def _schema_problem(exc: ValidationError) -> _Problem:
    """Pydantic's first error as one line: field, value (never a personal one), expected."""
    err = exc.errors()[0]
    loc = err["loc"]
    name = str(loc[0]) if loc else None
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or None
    if err["type"] == "extra_forbidden":
        return _Problem(
            "unknown field",
            field=field,
            expected=f"only the fields {', '.join(ImportedFeedback.model_fields)}",
        )
    if err["type"] == "missing":
        return _Problem("missing field", field=field, expected=_EXPECTED.get(name or ""))
    message = err["msg"].removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    got = err.get("input")
    if name in _UNECHOED:
        if isinstance(got, str):
            message += f" (got {len(got)} characters)"
        got = None
    else:
        got = _echo(got)
    return _Problem(message, field=field, got=got, expected=_EXPECTED.get(name or ""))


def _echo(value: Any) -> Any:
    """A value as an error may show it: long strings cut, containers not shown."""
    if isinstance(value, str) and len(value) > _MAX_ECHO_CHARS:
        return value[:_MAX_ECHO_CHARS] + "…"
    if isinstance(value, dict | list):
        return value if len(repr(value)) <= _MAX_ECHO_CHARS else None
    return value

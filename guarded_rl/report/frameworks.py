"""Compliance frameworks as data: controls, the log evidence each needs, and the rule that
turns found evidence into met / partly met / gap.

A framework is one TOML file (`audits/*.toml`, or any path):

    name = "eu-ai-act"
    title = "EU AI Act (Regulation (EU) 2024/1689)"
    [[control]]
    id = "Art. 12"
    title = "Record-keeping"
    requirement = "Events over the system's lifetime are logged automatically ..."
    rule = "all"                      # "all": met when every item is found, partly when some
    [[control.evidence]]              # "any": met when one item is found
    what = "every update is a proposal entry with its drift measurements"
    entry = "update_proposed"         # an audit entry type ...
    field = "stats.param_change_rel"  # ... whose payload has this (dotted) field
    [[control.evidence]]
    what = "the log verifies end to end"
    fact = "log_verified"             # or a fact of `audit verify`

An evidence item names either an entry type (optionally narrowed by `field`, a `check` that ran
on it, and `equals` conditions) or a `fact` of the log's verification. Nothing else counts:
a capability the run did not use shows as a gap, never as a pass.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from guarded_rl.errors import InputError

#: Facts of `audit verify` an evidence item may require.
Fact = Literal["log_verified", "head_signed", "checkpoints_verified", "reviewer_signatures"]

FRAMEWORKS_DIR = Path(__file__).resolve().parent / "audits"  # -> the repository's audits/


class EvidenceSpec(BaseModel):
    """One piece of evidence a control needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    what: str = Field(..., min_length=1, description="What this evidence shows, in words.")
    entry: str | None = Field(None, min_length=1, description="An audit entry type.")
    field: str | None = Field(
        None, min_length=1, description="A dotted payload path the entry must have (not null)."
    )
    check: str | None = Field(
        None, min_length=1, description="A check that ran (not skipped) in the entry's checks."
    )
    check_passed: bool | None = Field(
        None, description="With `check`: the check must have passed (true) or failed (false)."
    )
    equals: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Dotted payload paths and a value they must have (or a list must hold).",
    )
    min_count: int = Field(1, ge=1, description="Entries needed for the evidence to be found.")
    fact: Fact | None = Field(None, description="A fact of the log's verification instead.")

    @model_validator(mode="after")
    def _one_source(self) -> EvidenceSpec:
        if (self.entry is None) == (self.fact is None):
            raise ValueError("give exactly one of 'entry' (an audit entry type) or 'fact'")
        if self.fact is not None and (self.field or self.check or self.equals):
            raise ValueError("'field', 'check' and 'equals' narrow an 'entry', not a 'fact'")
        if self.check_passed is not None and self.check is None:
            raise ValueError("'check_passed' needs the 'check' it is about")
        return self


class ControlSpec(BaseModel):
    """A control of the framework and the evidence that satisfies it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(..., min_length=1)
    title: str = Field(..., min_length=1)
    requirement: str = Field(..., min_length=1, description="The requirement, in our words.")
    rule: Literal["all", "any"] = Field(
        "all",
        description="'all': met when every item is found, partly met when some are, gap when "
        "none; 'any': met when one is found, gap when none.",
    )
    evidence: list[EvidenceSpec] = Field(..., min_length=1)


class FrameworkSpec(BaseModel):
    """A compliance framework: its controls, in the order the report lists them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(..., min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(..., min_length=1)
    version: str = Field(..., min_length=1, description="The text the mapping was made from.")
    note: str = Field(
        "", description="What the mapping is and is not (shown at the top of the report)."
    )
    control: list[ControlSpec] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> FrameworkSpec:
        ids = [c.id for c in self.control]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"control ids must be unique: {', '.join(duplicates)}")
        return self


def available_frameworks() -> list[str]:
    """Names of the shipped frameworks."""
    return sorted(p.stem for p in FRAMEWORKS_DIR.glob("*.toml"))


def load_framework(name_or_path: str) -> FrameworkSpec:
    """A shipped framework by name (`eu-ai-act`) or a framework file by path."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = FRAMEWORKS_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            raise InputError(
                "unknown framework",
                field="--framework",
                got=name_or_path,
                expected=f"one of {', '.join(available_frameworks())} or a .toml file",
            )
    elif not path.is_file():
        raise InputError("no such framework file", field="--framework", got=str(path))
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"malformed framework file: {exc}", file=str(path)) from None
    try:
        return FrameworkSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InputError(
            f"malformed framework file: {first['msg']}",
            file=str(path),
            field=where,
            got=first.get("input") if not isinstance(first.get("input"), dict) else None,
        ) from None

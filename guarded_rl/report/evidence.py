"""Control statuses from a run's audit log: each evidence item is looked up in the entries (or
in the verification facts), and the control's rule turns what was found into a status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from guarded_rl.audit.log import AuditEntry
from guarded_rl.report.frameworks import ControlSpec, EvidenceSpec, FrameworkSpec

MET, PARTLY, GAP, UNVERIFIED = "met", "partly met", "gap", "unverified"
MAX_REFS = 5  # evidence references listed per item (the count says how many there are)


@dataclass(frozen=True)
class VerificationFacts:
    """What `audit verify` established about the log."""

    ok: bool
    head_signed: bool
    checkpoints: int
    reviewer_signatures: int

    def holds(self, fact: str) -> bool:
        return {
            "log_verified": self.ok,
            "head_signed": self.ok and self.head_signed,
            "checkpoints_verified": self.ok and self.checkpoints > 0,
            "reviewer_signatures": self.ok and self.reviewer_signatures > 0,
        }[fact]


@dataclass
class EvidenceResult:
    what: str
    source: str  # "entry update_proposed (field stats.kl)" or "fact log_verified"
    found: bool
    count: int
    refs: list[dict[str, Any]] = field(default_factory=list)  # {"seq", "hash", "type"}


@dataclass
class ControlResult:
    id: str
    title: str
    requirement: str
    rule: str
    status: str
    evidence: list[EvidenceResult]


def lookup(payload: Any, path: str) -> list[Any]:
    """Values at a dotted path; a list on the way (or at the end) is searched element by
    element."""
    values = [payload]
    for part in path.split("."):
        found = []
        for value in values:
            items = value if isinstance(value, list) else [value]
            found += [item[part] for item in items if isinstance(item, dict) and part in item]
        values = found
    flat = [item for v in values for item in (v if isinstance(v, list) else [v])]
    return [v for v in flat if v is not None]


def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same kind: `true` is not 1, a number is not its string."""
    kinds = (bool, int | float, str)
    return any(isinstance(a, k) and isinstance(b, k) for k in kinds) and a == b


def checks_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The entry's checks that are well formed (a tampered log may hold anything)."""
    checks = payload.get("checks")
    return [c for c in checks if isinstance(c, dict)] if isinstance(checks, list) else []


def _check_ran(check: dict[str, Any]) -> bool:
    metrics = check.get("metrics")
    return not (isinstance(metrics, dict) and metrics.get("skipped"))


def _matches(entry: AuditEntry, spec: EvidenceSpec) -> bool:
    if entry.type != spec.entry or not isinstance(entry.payload, dict):
        return False
    if spec.field is not None and not lookup(entry.payload, spec.field):
        return False
    if spec.check is not None and not any(
        c.get("name") == spec.check
        and _check_ran(c)
        and (spec.check_passed is None or c.get("passed") is spec.check_passed)
        for c in checks_of(entry.payload)
    ):
        return False
    return all(
        any(same_value(found, value) for found in lookup(entry.payload, path))
        for path, value in spec.equals.items()
    )


def _source(spec: EvidenceSpec) -> str:
    if spec.fact is not None:
        return f"fact {spec.fact}"
    narrowed = [f"field {spec.field}"] if spec.field else []
    if spec.check:
        passed = {True: " passed", False: " failed", None: ""}[spec.check_passed]
        narrowed.append(f"check {spec.check}{passed}")
    narrowed += [f"{k} = {v}" for k, v in spec.equals.items()]
    return f"entry {spec.entry}" + (f" ({', '.join(narrowed)})" if narrowed else "")


def find_evidence(
    spec: EvidenceSpec, entries: Sequence[AuditEntry], facts: VerificationFacts
) -> EvidenceResult:
    if spec.fact is not None:
        holds = facts.holds(spec.fact)
        return EvidenceResult(spec.what, _source(spec), holds, int(holds))
    matched = [e for e in entries if _matches(e, spec)]
    refs = [{"seq": e.seq, "hash": e.hash, "type": e.type} for e in matched[:MAX_REFS]]
    return EvidenceResult(
        spec.what, _source(spec), len(matched) >= spec.min_count, len(matched), refs
    )


def status_of(control: ControlSpec, results: Sequence[EvidenceResult]) -> str:
    found = sum(r.found for r in results)
    if control.rule == "any":
        return MET if found else GAP
    if found == len(results):
        return MET
    return PARTLY if found else GAP


def evaluate(
    framework: FrameworkSpec, entries: Sequence[AuditEntry], facts: VerificationFacts
) -> list[ControlResult]:
    """Every control with its evidence; on a log that failed verification nothing can be
    met: every control is `unverified` (the evidence found is still listed)."""
    controls = []
    for control in framework.control:
        results = [find_evidence(spec, entries, facts) for spec in control.evidence]
        status = status_of(control, results) if facts.ok else UNVERIFIED
        controls.append(
            ControlResult(
                control.id, control.title, control.requirement, control.rule, status, results
            )
        )
    return controls

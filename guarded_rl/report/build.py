"""The content of a compliance report, as one JSON-able dict, from a run's audit log.

Verification comes first: a log that fails it is read line by line as it stands (nothing in it
can be trusted), and every control is `unverified`. All figures are counts, rates and
measurements from the log; the log holds no texts or identities, so neither does the report.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from itertools import islice
from pathlib import Path
from typing import Any

from guarded_rl import __version__
from guarded_rl.audit.events import CycleUpdateProposed, StepUpdateProposed, validate_payload
from guarded_rl.audit.log import AuditEntry, iso_time, iter_entries
from guarded_rl.commands.verify import VerifyReport, verify_run
from guarded_rl.errors import AuditError, InputError
from guarded_rl.report.evidence import (
    GAP,
    MET,
    PARTLY,
    UNVERIFIED,
    VerificationFacts,
    checks_of,
    evaluate,
    lookup,
)
from guarded_rl.report.frameworks import FrameworkSpec
from guarded_rl.rundir.paths import LOG_FILE


def build_report(run_dir: str | Path, framework: FrameworkSpec) -> dict[str, Any]:
    run_dir = Path(run_dir)
    verified = verify_run(run_dir)  # raises InputError for a missing or non-run directory
    entries = _entries(run_dir / LOG_FILE, verified)
    facts = VerificationFacts(
        ok=verified.ok,
        head_signed=verified.signed_size == verified.entries,
        checkpoints=verified.checkpoints,
        reviewer_signatures=verified.decisions,
    )
    controls = evaluate(framework, entries, facts)
    statuses = Counter(c.status for c in controls)
    by_type: dict[str, list[AuditEntry]] = {}
    for e in entries:
        by_type.setdefault(e.type, []).append(e)
    unreadable: list[str] = []

    def section(name: str, build: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        """A section from the entries; on a log that failed verification, a section its
        entries no longer have the shape for is left empty and named (it cannot be trusted
        anyway). On a verified log such an error is a bug and raises."""
        try:
            return build(by_type, *args)
        except (TypeError, AttributeError, KeyError, ValueError, InputError, AuditError):
            if verified.ok:
                raise
            unreadable.append(name)
            return build({}, *args) if name != "run" else _unknown_run()

    content: dict[str, Any] = {
        "headline": _headline(run_dir, verified),
        "report": {
            "framework": framework.name,
            "framework_title": framework.title,
            "framework_version": framework.version,
            "framework_note": framework.note,
            "run_dir": str(run_dir),
            "generated_at": _iso(time.time()),
            "guarded_rl_version": __version__,
        },
        "verification": {
            "ok": verified.ok,
            "entries": verified.entries,
            "signed_entries": verified.signed_size,
            "root_hash": verified.root_hash,
            "checkpoints_verified": verified.checkpoints,
            "reviewer_signatures_verified": verified.decisions,
            "failure": verified.failure,
            "failure_seq": verified.failure_seq,
            "notes": list(verified.notes),
        },
        "run": section("run", _run_summary, entries),
        "updates": section("updates", _updates),
        "safety": section("safety", _safety),
        "fairness": section("fairness", _fairness),
        "oversight": section("oversight", _oversight, verified),
        "consent": section("consent", _consent),
        "reproducibility": section("reproducibility", _reproducibility),
        "controls": [asdict(c) for c in controls],
        "control_summary": {s: statuses.get(s, 0) for s in (MET, PARTLY, GAP, UNVERIFIED)},
    }
    if unreadable:
        content["verification"]["notes"].append(
            f"sections left empty: their entries no longer have the recorded shape "
            f"({', '.join(unreadable)})"
        )
    return content


def _unknown_run() -> dict[str, Any]:
    keys = (
        "run_id", "integration", "model", "model_sha256_at_start", "policy_name",
        "policy_sha256", "seed", "cycles_configured", "started", "last_entry",
        "period_seconds",
    )  # fmt: skip
    return {**dict.fromkeys(keys), "resumed": 0, "outcome": "unknown", "versions": {}}


def _headline(run_dir: Path, verified: VerifyReport) -> str:
    if verified.ok:
        return (
            f"Audit log verified: {verified.entries} entries intact, signed head covers "
            f"{verified.signed_size} (root {verified.root_hash[:16]})."
        )
    return f"AUDIT LOG FAILED VERIFICATION: {verified.failure}. Nothing below can be trusted."


def _entries(path: Path, verified: VerifyReport) -> list[AuditEntry]:
    """The entries `verify_run` just checked (not scanned a second time; a live run may have
    appended since); for a log that failed, every line that still parses as an entry."""
    if verified.ok:
        return list(islice(iter_entries(path), verified.entries))
    entries = list(iter_entries(path, skip_unreadable=True))
    if not entries:
        raise AuditError("no readable entries in the audit log", file=str(path))
    return entries


def _iso(ts: float | None) -> str | None:
    return None if ts is None else iso_time(ts)


def _run_summary(by_type: dict[str, list[AuditEntry]], entries: list[AuditEntry]) -> dict[str, Any]:
    started = next(iter(by_type.get("run_started", [])), None)
    if started is None:
        raise InputError("the audit log has no run_started entry", field="RUN_DIR")
    p = started.payload
    config = p.get("config") or {}
    policy = p.get("policy") or {}
    finished = by_type.get("run_finished", [])
    return {
        "run_id": p.get("run_id"),
        "integration": p.get("integration", "guarded-rl run"),
        "model": config.get("model") or ("embedded:default" if config else "user model"),
        "model_sha256_at_start": p.get("base_sha256"),
        "policy_name": policy.get("name"),
        "policy_sha256": p.get("policy_sha256"),
        "seed": p.get("seed", config.get("seed")),
        "cycles_configured": config.get("cycles"),
        "started": _iso(started.ts),
        "last_entry": _iso(entries[-1].ts),
        "period_seconds": round(entries[-1].ts - started.ts, 1),
        "resumed": len(by_type.get("run_resumed", [])),
        "outcome": finished[-1].payload.get("outcome") if finished else "not finished",
        "versions": p.get("versions", {}),
    }


def _check(entry: AuditEntry, name: str) -> dict[str, Any] | None:
    return next((dict(c) for c in checks_of(entry.payload) if c.get("name") == name), None)


def _updates(by_type: dict[str, list[AuditEntry]]) -> dict[str, Any]:
    decided = sorted((e for kind in _DECISIONS for e in by_type.get(kind, [])), key=lambda e: e.seq)
    outcome: dict[Any, dict[str, Any]] = {}  # keyed by the logged cycle (None if absent)
    for e in decided:  # the latest decision on an update is its outcome (held, then reviewed)
        outcome[e.payload.get("cycle", -1)] = {
            "decision": _decision_of(e),
            "rule": e.payload.get("rule"),
            "reasons": e.payload.get("reasons", []),
            "decided_seq": e.seq,
            "held_for_review": outcome.get(e.payload.get("cycle", -1), {}).get(
                "held_for_review", False
            )
            or e.type == "update_pending",
        }
    applied = {e.payload.get("cycle"): e for e in by_type.get("update_applied", [])}
    timeline = []
    for e in by_type.get("update_proposed", []):
        cycle = e.payload.get("cycle")
        kl = (_check(e, "probe_kl") or {}).get("metrics", {})
        row = {
            "cycle": cycle,
            "seq": e.seq,
            "hash": e.hash,
            "time": _iso(e.ts),
            "kl_step": kl.get("kl_step"),
            "kl_to_start": kl.get("kl_ref"),
            "param_change": e.payload.get("stats", {}).get("param_change_rel"),
            "reward_mean": (e.payload.get("rewards") or {}).get("mean")
            if e.payload.get("rewards")
            else e.payload.get("stats", {}).get("mean_reward"),
            "max_step_kl": e.payload.get("thresholds", {}).get("max_step_kl"),
            **outcome.get(
                cycle,
                {"decision": "undecided", "rule": None, "reasons": [], "held_for_review": False},
            ),
            "applied": cycle in applied,
        }
        timeline.append(row)
    rollbacks = [
        {
            "seq": e.seq,
            "hash": e.hash,
            "time": _iso(e.ts),
            "to_update": e.payload.get("to_update"),
            "reason": e.payload.get("reason"),
        }
        for e in by_type.get("rollback", [])
    ]
    decisions = Counter(r["decision"] for r in timeline)
    return {
        "proposed": len(timeline),
        "applied": len(applied),
        "approved": decisions.get("approved", 0),
        "rejected": decisions.get("rejected", 0),
        "superseded": decisions.get("superseded", 0),
        "expired": decisions.get("expired", 0),
        "pending": decisions.get("pending", 0),
        "held_for_review": sum(r["held_for_review"] for r in timeline),
        "rolled_back": len(rollbacks),
        "timeline": timeline,
        "rollbacks": rollbacks,
    }


_DECISIONS = ("update_approved", "update_rejected", "update_pending")
#: `update_rejected` rules that are no person's or check's rejection: the review queue closed
#: the proposal because the weights it was made from are no longer live, or nobody decided in time
_CLOSED_UNDECIDED = ("superseded", "expired")


def _decision_of(entry: AuditEntry) -> str:
    """approved, pending, rejected, or superseded / expired for a proposal closed unreviewed."""
    decision = entry.type.removeprefix("update_")
    if decision == "rejected" and entry.payload.get("rule") in _CLOSED_UNDECIDED:
        return str(entry.payload["rule"])
    return decision


def _proposals(
    by_type: dict[str, list[AuditEntry]],
) -> list[CycleUpdateProposed | StepUpdateProposed]:
    """The `update_proposed` entries as their typed shapes (a cycle or a loop's step)."""
    found = [validate_payload(e.type, e.payload) for e in by_type.get("update_proposed", [])]
    return [p for p in found if isinstance(p, CycleUpdateProposed | StepUpdateProposed)]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _safety(by_type: dict[str, list[AuditEntry]]) -> dict[str, Any]:
    series = []
    totals: Counter[str] = Counter()
    for p in _proposals(by_type):
        if isinstance(p, StepUpdateProposed):
            screened = p.screened
            if screened:  # an integration loop's own screen counts
                row: dict[str, Any] = {"cycle": p.cycle, "screened": screened}
                total = screened.get("completions") or screened.get("generated")
                if total:
                    row["block_rate"] = _rate(screened.get("blocked", 0), total)
                    row["redact_rate"] = _rate(screened.get("redacted", 0), total)
                series.append(row)
                totals.update(screened)
            continue
        counts = p.counts
        row = {
            "cycle": p.cycle,
            "generated": counts.generated,
            "blocked": counts.blocked,
            "redacted": counts.redacted,
            "escalated": counts.escalated,
        }
        row["block_rate"] = _rate(row["blocked"], counts.generated)
        row["redact_rate"] = _rate(row["redacted"], counts.generated)
        series.append(row)
        totals.update({k: row[k] for k in ("generated", "blocked", "redacted", "escalated")})
    filters = None
    if by_type.get("run_started"):
        filters = (
            by_type["run_started"][0].payload.get("policy", {}).get("safety", {}).get("filters")
        )
    return {
        "filters": filters,
        "series": series,
        "totals": dict(totals),
        "block_rate": _rate(totals.get("blocked", 0), totals.get("generated", 0)),
        "redact_rate": _rate(totals.get("redacted", 0), totals.get("generated", 0)),
    }


def _fairness(by_type: dict[str, list[AuditEntry]]) -> dict[str, Any]:
    data, output = [], []
    for e in by_type.get("update_proposed", []):
        cycle = e.payload.get("cycle")
        check = _check(e, "bias_data")
        if check is not None:
            m = check.get("metrics", {})
            data.append(
                {
                    "cycle": cycle,
                    "seq": e.seq,
                    "passed": check.get("passed"),
                    "reward_gap": m.get("reward_difference"),
                    "reward_gap_lower_95": m.get("reward_difference_lower_95"),
                    "max_reward_gap": m.get("max_reward_gap"),
                    "like_rate_by_group": {
                        g: v.get("like_rate") for g, v in (m.get("by_group") or {}).items()
                    },
                }
            )
        check = _check(e, "bias_output")
        if check is not None and not check.get("metrics", {}).get("skipped"):
            axes = check.get("metrics", {}).get("axes", [])
            output.append(
                {
                    "cycle": cycle,
                    "seq": e.seq,
                    "passed": check.get("passed"),
                    "axes": [
                        {
                            "axis": a.get("axis"),
                            "metric": a.get("metric"),
                            "gap": a.get("gap_after"),
                            "threshold": a.get("threshold"),
                            "passed": a.get("passed"),
                        }
                        for a in axes
                    ],
                }
            )
    return {
        "data_checks": data,
        "output_probes": output,
        "failed": sum(r["passed"] is False for r in data)
        + sum(r["passed"] is False for r in output),
    }


def _oversight(by_type: dict[str, list[AuditEntry]], verified: VerifyReport) -> dict[str, Any]:
    decisions = []
    for e in by_type.get("review_decision", []):
        body = (e.payload.get("decision") or {}).get("body", {})
        decisions.append(
            {
                "seq": e.seq,
                "hash": e.hash,
                "time": _iso(e.ts),
                "proposal_id": e.payload.get("proposal_id"),
                "cycle": e.payload.get("cycle"),
                "decision": body.get("decision"),
                "reviewer": body.get("reviewer"),  # a key fingerprint, never a name
                "role": e.payload.get("role"),
                "approvals": e.payload.get("approvals"),
                "approvals_required": e.payload.get("approvals_required"),
            }
        )
    started = by_type.get("run_started", [])
    gate = started[0].payload.get("policy", {}).get("gate", {}) if started else {}
    approvers = Counter(e.payload.get("approver", "") for e in by_type.get("update_approved", []))
    return {
        "human_review": gate.get("human_review"),
        "approvals_required": gate.get("approvals_required"),
        "four_eyes": gate.get("four_eyes"),
        "held_for_review": len(by_type.get("update_pending", [])),
        "decisions": decisions,
        "reviewers": len({d["reviewer"] for d in decisions if d["reviewer"]}),
        "signatures_verified": verified.decisions,
        "approved_by_gate": approvers.get("gate:auto", 0),
        "approved_by_people": sum(n for a, n in approvers.items() if a != "gate:auto"),
    }


def _consent(by_type: dict[str, list[AuditEntry]]) -> dict[str, Any]:
    refused = sum(
        p.counts.refused_no_consent
        if isinstance(p, CycleUpdateProposed)
        else (p.screened or {}).get("no_consent", 0)
        for p in _proposals(by_type)
    )
    return {
        "grants": len(by_type.get("consent_granted", [])),
        "revocations": len(by_type.get("consent_revoked", [])),
        "erasures": len(by_type.get("erasure", [])),
        "erased_feedback_rows": sum(
            int(e.payload.get("feedback_rows", 0)) for e in by_type.get("erasure", [])
        ),
        "retention_purges": len(by_type.get("retention_purge", [])),
        "ratings_refused_without_consent": refused,
    }


def _reproducibility(by_type: dict[str, list[AuditEntry]]) -> dict[str, Any]:
    proposed = by_type.get("update_proposed", [])
    with_inputs = [
        e for e in proposed if lookup(e.payload, "rng_seed") and "batch_sha256" in e.payload
    ]
    affected = sorted(
        {c for e in by_type.get("erasure", []) for c in e.payload.get("trained_in_cycles", [])}
    )
    return {
        "updates": len(proposed),
        "with_replay_inputs": len(with_inputs),
        "not_replayable_after_erasure": affected,
        "checkpoints": len(by_type.get("checkpoint_saved", [])),
        "replay": None,  # filled by `report --replay`
    }


def attach_replay(report: dict[str, Any], lines: Sequence[Any]) -> None:
    """Put the results of re-executing the updates into the report."""
    report["reproducibility"]["replay"] = [
        {"cycle": line.cycle, "status": line.status, "detail": line.detail} for line in lines
    ]

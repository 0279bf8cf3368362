"""Evidence lookup and control statuses: entries and fields found, skipped checks not counted,
the rules `all` and `any`, and nothing met on a log that failed verification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guarded_rl.audit.log import AuditEntry, read_log
from guarded_rl.report.evidence import (
    VerificationFacts,
    evaluate,
    find_evidence,
    lookup,
)
from guarded_rl.report.frameworks import EvidenceSpec, FrameworkSpec

OK = VerificationFacts(ok=True, head_signed=True, checkpoints=2, reviewer_signatures=0)


def _entry(seq: int, type_: str, payload: dict[str, Any]) -> AuditEntry:
    return AuditEntry(seq, 1.0e9 + seq, type_, payload, "0" * 64, f"{seq:064x}")


PROPOSED = _entry(
    3,
    "update_proposed",
    {
        "stats": {"param_change_rel": 0.01, "kl_ref": None},
        "checks": [
            {"name": "probe_kl", "passed": True, "metrics": {"kl_step": 0.001}},
            {"name": "bias_output", "passed": True, "metrics": {"skipped": True}},
        ],
    },
)


def test_lookup_follows_dotted_paths_through_lists_and_drops_nulls() -> None:
    assert lookup(PROPOSED.payload, "stats.param_change_rel") == [0.01]
    assert lookup(PROPOSED.payload, "stats.kl_ref") == []
    assert lookup(PROPOSED.payload, "checks.name") == ["probe_kl", "bias_output"]
    assert lookup(PROPOSED.payload, "checks.metrics.kl_step") == [0.001]
    assert lookup(PROPOSED.payload, "nothing.here") == []


def test_evidence_needs_the_field_the_check_that_ran_and_the_values() -> None:
    entries = [PROPOSED, _entry(4, "update_approved", {"approver": "gate:auto"})]

    def found(**spec: Any) -> bool:
        return find_evidence(EvidenceSpec(what="x", **spec), entries, OK).found

    assert found(entry="update_proposed", field="stats.param_change_rel")
    assert not found(entry="update_proposed", field="stats.kl_ref")  # null is not evidence
    assert found(entry="update_proposed", check="probe_kl")
    assert not found(entry="update_proposed", check="bias_output")  # skipped: did not run
    assert found(entry="update_approved", equals={"approver": "gate:auto"})
    assert not found(entry="update_approved", equals={"approver": "rk-1234"})
    assert not found(entry="update_proposed", min_count=2)
    result = find_evidence(EvidenceSpec(what="x", entry="update_proposed"), entries, OK)
    assert result.refs == [{"seq": 3, "hash": PROPOSED.hash, "type": "update_proposed"}]
    assert not found(fact="reviewer_signatures") and found(fact="checkpoints_verified")


def _framework(rule: str) -> FrameworkSpec:
    return FrameworkSpec.model_validate(
        {
            "name": "t",
            "title": "T",
            "version": "1",
            "control": [
                {
                    "id": "C",
                    "title": "c",
                    "requirement": "r",
                    "rule": rule,
                    "evidence": [
                        {"what": "a", "entry": "update_proposed"},
                        {"what": "b", "entry": "review_decision"},
                    ],
                }
            ],
        }
    )


def test_rules_all_and_any_and_unverified_logs() -> None:
    assert evaluate(_framework("all"), [PROPOSED], OK)[0].status == "partly met"
    assert evaluate(_framework("all"), [], OK)[0].status == "gap"
    decision = _entry(5, "review_decision", {})
    assert evaluate(_framework("all"), [PROPOSED, decision], OK)[0].status == "met"
    assert evaluate(_framework("any"), [PROPOSED], OK)[0].status == "met"
    assert evaluate(_framework("any"), [], OK)[0].status == "gap"
    failed = VerificationFacts(ok=False, head_signed=True, checkpoints=2, reviewer_signatures=1)
    (control,) = evaluate(_framework("all"), [PROPOSED, decision], failed)
    assert control.status == "unverified" and all(e.found for e in control.evidence)
    assert not failed.holds("reviewer_signatures")  # no fact holds on a failed log


def test_a_loops_own_screen_counts_become_rates_per_update() -> None:
    from guarded_rl.report.build import _safety

    counts = {"completions": 64, "blocked": 2, "redacted": 1}
    stored = Path(__file__).parents[2] / "data" / "logs" / "torch-loop" / "audit.jsonl"
    step = next(e for e in read_log(stored) if e.type == "update_proposed")  # a real loop step
    payload = {**step.payload, "cycle": 3, "screened": counts}
    series = _safety({"update_proposed": [_entry(3, "update_proposed", payload)]})
    assert series["series"] == [
        {"cycle": 3, "screened": counts, "block_rate": 0.0312, "redact_rate": 0.0156}
    ]
    assert series["totals"] == counts

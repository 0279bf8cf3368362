"""The shipped compliance frameworks (`audits/*.toml`): they load, name the controls they must,
reject malformed files with a one-line error naming the file and field, and give the statuses
their design promises on synthetic audit logs (no model runs)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from guarded_rl.audit.log import AuditEntry
from guarded_rl.errors import InputError
from guarded_rl.report.evidence import (
    GAP,
    MET,
    PARTLY,
    UNVERIFIED,
    VerificationFacts,
    evaluate,
)
from guarded_rl.report.frameworks import (
    FRAMEWORKS_DIR,
    FrameworkSpec,
    available_frameworks,
    load_framework,
)

SHIPPED = ("eu-ai-act", "nist-ai-rmf", "iso-42001")

#: Entry types a run's audit log can hold (an evidence item naming another one never matches).
ENTRY_TYPES = {
    "run_started",
    "run_resumed",
    "run_finished",
    "repair",
    "checkpoint_saved",
    "rollback",
    "update_proposed",
    "update_approved",
    "update_rejected",
    "update_pending",
    "update_applied",
    "review_decision",
    "consent_granted",
    "consent_revoked",
    "erasure",
    "retention_purge",
    "feedback_imported",
    "episodes",
    "cycle_skipped",
}

#: Controls about people overseeing the system: a gap unless people actually decided.
OVERSIGHT = {
    "eu-ai-act": ("Art. 14",),
    "nist-ai-rmf": ("GOVERN 3.2", "MAP 3.5"),
    "iso-42001": ("A.3.2", "A.9.2"),
}

#: Controls about erasure after a withdrawn consent.
ERASURE = {"nist-ai-rmf": ("GOVERN 1.1",), "iso-42001": ("A.7.2",)}

#: Controls about logging events.
RECORD_KEEPING = {"eu-ai-act": "Art. 12", "iso-42001": "A.6.2.8"}

ALL_FACTS = VerificationFacts(ok=True, head_signed=True, checkpoints=1, reviewer_signatures=1)
NO_REVIEWS = VerificationFacts(ok=True, head_signed=True, checkpoints=1, reviewer_signatures=0)


# --- synthetic logs, shaped like a real `guarded-rl run` -------------------------------------


class Log:
    """Builds a list of `AuditEntry` in order (hashes are placeholders: evaluation does not
    check them; verification's outcome comes in through `VerificationFacts`)."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def add(self, type_: str, payload: dict[str, Any]) -> Log:
        seq = len(self.entries)
        prev = self.entries[-1].hash if self.entries else "0" * 64
        self.entries.append(AuditEntry(seq, 1.7e9 + seq, type_, payload, prev, f"{seq:064x}"))
        return self


def _started(reviewers: str | None = None) -> dict[str, Any]:
    return {
        "run_id": "a760224581cf4685",
        "config": {"cycles": 2, "seed": 0, "model": None},
        "policy": {
            "name": "default",
            "safety": {"filters": ["profanity", "threat", "pii"], "pii_action": "block"},
            "consent": {"purpose": "training", "retention_days": 365, "consent_text": "..."},
            "gate": {
                "human_review": "when_needed",
                "approvals_required": 1,
                "reviewers": reviewers,
            },
            "audit": {"checkpoint_every": 10},
        },
        "policy_sha256": "p" * 64,
        "base_sha256": "b" * 64,
        "base_checkpoint_id": "k" * 64,
        "versions": {
            "code": "c" * 40,
            "python": "3.11.7",
            "torch": "2.13.0",
            "guarded_rl": "0.1.0",
        },
        "public_key": "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----\n",
        "key_id": "0d9b4a0384f3560b",
        "operator": {"commitment": "8cd39aa4", "reviewer_key": None},
        "seed": 0,
    }


def _proposed(cycle: int, *, probed: bool = False, bias_data_passed: bool = True) -> dict[str, Any]:
    output_metrics: dict[str, Any] = (
        {"axes": [{"axis": "gender", "metric": "toxicity", "gap_after": 0.01, "passed": True}]}
        if probed
        else {"skipped": True}
    )
    return {
        "cycle": cycle,
        "base_sha256": "b" * 64,
        "candidate_sha256": f"{cycle:064x}",
        "batch_sha256": "d" * 64,
        "rng_seed": 0,  # a falsy value is still present
        "batch_size": 28,
        "counts": {
            "generated": 32,
            "blocked": 1,
            "redacted": 0,
            "escalated": 0,
            "shown": 31,
            "rated": 31,
            "liked": 15,
            "refused_no_consent": 4,
            "redacted_rewards_capped": 0,
            "by_action": {"allow": 31, "block": 1, "escalate": 0, "redact": 0},
            "blocked_by_reason": {"profanity": 1},
        },
        "feedback_by_source": {"person": 27, "penalty": 1},
        "checks": [
            {
                "name": "probe_kl",
                "passed": True,
                "metrics": {"kl_step": 0.003, "kl_ref": 0.003},
                "message": "measured",
            },
            {
                "name": "bias_data",
                "passed": bias_data_passed,
                "metrics": {"ratings": 27, "ratings_without_group": 3, "max_reward_gap": 0.5},
                "message": "within limits",
            },
            {"name": "bias_output", "passed": True, "metrics": output_metrics, "message": ""},
        ],
        "stats": {"param_change_rel": 0.0038, "kl_ref": 0.0, "loss": -0.7, "mean_reward": 0.39},
        "thresholds": {
            "max_step_kl": 0.01,
            "reject_step_kl": 0.5,
            "max_param_change": 0.05,
            "safety_filters": ["profanity", "threat", "pii"],
            "pii_action": "block",
            "bias_on_fail": "escalate",
        },
        "layer_change": {"transformer.h.0": 0.13},
        "top_samples": [],
    }


def auto_run(*, probed: bool = False) -> Log:
    """Consent, two clean updates the gate approved by itself, checkpoints: no person decided."""
    log = Log().add("run_started", _started())
    log.add(
        "checkpoint_saved",
        {
            "checkpoint_id": "k" * 64,
            "model_sha256": "b" * 64,
            "with_optimizer": True,
            "reason": "start",
        },
    )
    log.add(
        "consent_granted",
        {
            "subject": "s-1",
            "purposes": ["fairness-analysis", "training"],
            "consent_text_sha256": "e" * 64,
        },
    )
    log.add("retention_purge", {"retention_days": 365, "feedback_rows": 0})
    for cycle in (0, 1):
        log.add("update_proposed", _proposed(cycle, probed=probed and cycle == 0))
        log.add(
            "update_approved",
            {
                "cycle": cycle,
                "rule": "auto_small_step",
                "reasons": ["small"],
                "approver": "gate:auto",
            },
        )
        log.add("update_applied", {"cycle": cycle, "model_sha256": f"{cycle:064x}"})
    log.add("run_finished", {"outcome": "completed"})
    return log


def reviewed_run() -> Log:
    """Every update held for people; a registered reviewer approved one with a signature."""
    log = Log().add("run_started", _started(reviewers="/tmp/reviewers.toml"))
    log.add(
        "checkpoint_saved",
        {
            "checkpoint_id": "k" * 64,
            "model_sha256": "b" * 64,
            "with_optimizer": True,
            "reason": "start",
        },
    )
    log.add(
        "consent_granted",
        {"subject": "s-1", "purposes": ["training"], "consent_text_sha256": "e" * 64},
    )
    log.add("update_proposed", _proposed(0, probed=True))
    log.add(
        "update_pending",
        {
            "cycle": 0,
            "proposal_id": "u0",
            "rule": "always_review",
            "reasons": ["policy: every update needs a person"],
            "base_sha256": "b" * 64,
            "candidate_sha256": f"{0:064x}",
            "checkpoint_id": "j" * 64,
            "approvals_required": 1,
            "expiry_hours": 24.0,
        },
    )
    body = {
        "decision": "approve",
        "reviewer": "rk-9d0efa0f010dea76",
        "proposal_id": "u0",
        "candidate_sha256": f"{0:064x}",
        "note": "checked",
    }
    log.add(
        "review_decision",
        {
            "cycle": 0,
            "proposal_id": "u0",
            "role": "reviewer",
            "decision": {"body": body, "signature": "f" * 128},
            "approvals": 1,
            "approvals_required": 1,
        },
    )
    log.add(
        "update_approved",
        {
            "cycle": 0,
            "proposal_id": "u0",
            "rule": "human_review",
            "approver": "reviewers",
            "reasons": ["1 of 1"],
        },
    )
    log.add("update_applied", {"cycle": 0, "model_sha256": f"{0:064x}", "proposal_id": "u0"})
    log.add(
        "checkpoint_saved",
        {
            "checkpoint_id": "m" * 64,
            "model_sha256": f"{0:064x}",
            "with_optimizer": True,
            "reason": "periodic",
        },
    )
    return log


def revoke(log: Log) -> Log:
    log.add("consent_revoked", {"subject": "s-1", "purposes": ["training"]})
    log.add(
        "erasure",
        {
            "subject": "s-1",
            "feedback_rows": 3,
            "replay_rows": 1,
            "key_destroyed": True,
            "method": "crypto-shredding",
            "trained_in_cycles": [0],
            "applied_updates": [{"cycle": 0}],
            "rollback_target": None,
        },
    )
    return log


def statuses(name: str, log: Log, facts: VerificationFacts) -> dict[str, str]:
    return {c.id: c.status for c in evaluate(load_framework(name), log.entries, facts)}


# --- the shipped files ------------------------------------------------------------------------


def test_available_frameworks_lists_the_shipped_three() -> None:
    assert set(SHIPPED) <= set(available_frameworks())
    assert available_frameworks() == sorted(available_frameworks())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_framework_loads_by_name_and_by_path(name: str) -> None:
    spec = load_framework(name)
    assert isinstance(spec, FrameworkSpec)
    assert spec.name == name  # the name is the file stem
    assert load_framework(str(FRAMEWORKS_DIR / f"{name}.toml")) == spec
    assert spec.title and spec.version
    assert "not legal advice" in " ".join(spec.note.split())
    for control in spec.control:
        assert control.requirement.strip() and control.title.strip()
        for item in control.evidence:
            assert item.what.strip()
            assert item.entry is None or item.entry in ENTRY_TYPES, (control.id, item.entry)


def _covers(ids: list[str], article: str) -> bool:
    return any(i == article or i.startswith(f"{article}(") for i in ids)


def test_eu_ai_act_covers_the_required_articles() -> None:
    ids = [c.id for c in load_framework("eu-ai-act").control]
    for article in ("Art. 9", "Art. 10", "Art. 12", "Art. 13", "Art. 14", "Art. 15", "Art. 72"):
        assert _covers(ids, article), article
    assert all(re.fullmatch(r"Art\. \d+(\(\d+\)(\([a-z]\))?(-\(?[0-9a-z]+\)?)*)?", i) for i in ids)


def test_nist_ai_rmf_uses_real_subcategory_ids() -> None:
    ids = [c.id for c in load_framework("nist-ai-rmf").control]
    assert {"MANAGE 1.1", "MANAGE 2.4", "MANAGE 4.1"} <= set(ids)
    assert all(re.fullmatch(r"(GOVERN|MAP|MEASURE|MANAGE) \d\.\d{1,2}", i) for i in ids), ids
    assert {i.split()[0] for i in ids} == {"GOVERN", "MAP", "MEASURE", "MANAGE"}


def test_iso_42001_covers_event_logging_and_annex_a_families() -> None:
    spec = load_framework("iso-42001")
    ids = [c.id for c in spec.control]
    assert "A.6.2.8" in ids
    assert next(c for c in spec.control if c.id == "A.6.2.8").title == (
        "AI system recording of event logs"
    )
    assert {i.split(".")[1] for i in ids} >= {"5", "6", "7", "9"}
    assert all(re.fullmatch(r"A\.\d+\.\d+(\.\d+)?( \(\w+\))?", i) for i in ids), ids


@pytest.mark.parametrize("name", SHIPPED)
def test_oversight_controls_rest_on_people_not_on_the_log(name: str) -> None:
    for control in load_framework(name).control:
        if control.id not in OVERSIGHT.get(name, ()):
            continue
        assert control.rule == "all"
        facts = {e.fact for e in control.evidence if e.fact}
        assert facts == {"reviewer_signatures"}, control.id
        assert any(e.entry == "review_decision" for e in control.evidence), control.id


# --- malformed files --------------------------------------------------------------------------

VALID = """\
name = "mini"
title = "Mini"
version = "1"
[[control]]
id = "C1"
title = "One"
requirement = "Something is logged."
[[control.evidence]]
what = "a proposal"
entry = "update_proposed"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mini.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_custom_file_loads(tmp_path: Path) -> None:
    spec = load_framework(str(_write(tmp_path, VALID)))
    assert [c.id for c in spec.control] == ["C1"]
    assert spec.control[0].rule == "all"


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID.replace('title = "Mini"', 'title = "Mini'))
    with pytest.raises(InputError) as err:
        load_framework(str(path))
    assert str(path) in str(err.value)
    assert "malformed framework file" in str(err.value)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (VALID.replace('version = "1"', 'version = "1"\ncolour = "red"'), "colour"),
        (VALID + 'feild = "stats.kl"\n', "control.0.evidence.0.feild"),
        (VALID + 'fact = "log_verified"\n', "control.0.evidence.0"),
        (VALID.replace('entry = "update_proposed"', 'fact = "log_is_fine"'), "fact"),
        (VALID.replace('id = "C1"', 'id = "C1"\nrule = "most"'), "control.0.rule"),
        (VALID.replace('name = "mini"', 'name = "Mini Framework"'), "name"),
    ],
    ids=[
        "unknown-key",
        "unknown-evidence-key",
        "entry-and-fact",
        "unknown-fact",
        "bad-rule",
        "bad-name",
    ],
)
def test_schema_errors_name_the_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as err:
        load_framework(str(path))
    assert str(path) in str(err.value)
    assert field in str(err.value)


def test_entry_and_fact_together_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="exactly one of 'entry'") as err:
        load_framework(str(_write(tmp_path, VALID + 'fact = "log_verified"\n')))
    assert err.value.field == "control.0.evidence.0"


def test_duplicate_control_ids_are_refused(tmp_path: Path) -> None:
    second = VALID[VALID.index("[[control]]") :]
    with pytest.raises(InputError, match="control ids must be unique: C1") as err:
        load_framework(str(_write(tmp_path, VALID + second)))
    assert str(tmp_path / "mini.toml") in str(err.value)


def test_unknown_framework_name_lists_the_shipped_ones() -> None:
    with pytest.raises(InputError) as err:
        load_framework("sox-404")
    assert err.value.field == "--framework"
    assert "sox-404" in str(err.value)
    for name in SHIPPED:
        assert name in str(err.value)


def test_missing_framework_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such framework file") as err:
        load_framework(str(tmp_path / "absent.toml"))
    assert err.value.field == "--framework"


# --- evaluation on synthetic logs -------------------------------------------------------------


def test_eu_art_14_is_a_gap_when_the_gate_approved_everything_by_itself() -> None:
    assert statuses("eu-ai-act", auto_run(probed=True), NO_REVIEWS)["Art. 14"] == GAP


def test_eu_art_14_is_met_with_held_updates_and_signed_human_decisions() -> None:
    assert statuses("eu-ai-act", reviewed_run(), ALL_FACTS)["Art. 14"] == MET


def test_eu_art_14_is_not_met_by_an_unverified_signature() -> None:
    facts = VerificationFacts(ok=True, head_signed=True, checkpoints=1, reviewer_signatures=0)
    assert statuses("eu-ai-act", reviewed_run(), facts)["Art. 14"] == PARTLY


@pytest.mark.parametrize("name", SHIPPED)
def test_every_oversight_control_is_a_gap_without_people_and_met_with_them(name: str) -> None:
    auto = statuses(name, auto_run(probed=True), NO_REVIEWS)
    reviewed = statuses(name, reviewed_run(), ALL_FACTS)
    for control_id in OVERSIGHT[name]:
        assert auto[control_id] == GAP, control_id
        assert reviewed[control_id] == MET, control_id


@pytest.mark.parametrize("name", SHIPPED)
def test_a_log_that_failed_verification_leaves_every_control_unverified(name: str) -> None:
    broken = VerificationFacts(ok=False, head_signed=True, checkpoints=1, reviewer_signatures=1)
    for log in (auto_run(probed=True), revoke(reviewed_run())):
        assert set(statuses(name, log, broken).values()) == {UNVERIFIED}


@pytest.mark.parametrize("name", SHIPPED)
def test_every_control_can_be_met_by_a_full_log(name: str) -> None:
    """Guards against typos in entry types, fields and checks: a log with every capability
    used meets every control (except MANAGE 2.3 and MANAGE 2.4, which need a rollback or a
    rejection and get their own test)."""
    log = revoke(reviewed_run())
    log.add("update_proposed", _proposed(1))
    log.add("update_rejected", {"cycle": 1, "rule": "reject_step_kl", "reasons": ["big"]})
    log.add(
        "rollback",
        {"to_update": 0, "reason": "erasure", "model_sha256": "b" * 64, "checkpoint_id": "k" * 64},
    )
    log.add("retention_purge", {"retention_days": 365, "feedback_rows": 0})
    result = statuses(name, log, ALL_FACTS)
    assert {k: v for k, v in result.items() if v != MET} == {}


@pytest.mark.parametrize(("name", "control_id"), list(RECORD_KEEPING.items()))
def test_record_keeping_needs_a_verified_signed_log(name: str, control_id: str) -> None:
    assert statuses(name, auto_run(), NO_REVIEWS)[control_id] == MET
    unsigned = VerificationFacts(ok=True, head_signed=False, checkpoints=1, reviewer_signatures=0)
    assert statuses(name, auto_run(), unsigned)[control_id] == PARTLY
    no_checkpoint = Log()
    for e in auto_run().entries:
        if e.type != "checkpoint_saved":
            no_checkpoint.add(e.type, e.payload)
    assert statuses(name, no_checkpoint, NO_REVIEWS)[control_id] == PARTLY


@pytest.mark.parametrize(
    ("name", "control_id"),
    [
        ("eu-ai-act", "Art. 12(2)(a)"),
        ("iso-42001", "A.6.2.8 (decisions)"),
        ("nist-ai-rmf", "MANAGE 1.1"),
    ],
)
def test_any_recorded_decision_evidences_the_decision_controls(name: str, control_id: str) -> None:
    assert statuses(name, auto_run(), NO_REVIEWS)[control_id] == MET  # approved by the gate
    held = Log()
    for e in auto_run().entries:
        if e.type == "update_approved":
            held.add("update_pending", {**e.payload, "rule": "failed_checks", "proposal_id": "u0"})
        elif e.type != "update_applied":
            held.add(e.type, e.payload)
    assert statuses(name, held, NO_REVIEWS)[control_id] == MET  # only held
    undecided = Log()
    for e in auto_run().entries:
        if e.type not in ("update_approved", "update_applied"):
            undecided.add(e.type, e.payload)
    assert statuses(name, undecided, NO_REVIEWS)[control_id] == GAP


@pytest.mark.parametrize(("name", "control_ids"), list(ERASURE.items()))
def test_erasure_controls_need_a_revocation_and_an_erasure(
    name: str, control_ids: tuple[str, ...]
) -> None:
    before = statuses(name, auto_run(), NO_REVIEWS)
    after = statuses(name, revoke(auto_run()), NO_REVIEWS)
    for control_id in control_ids:
        assert before[control_id] == PARTLY  # consent / retention recorded, nobody withdrew yet
        assert after[control_id] == MET


def test_consent_controls_are_gaps_without_consent_entries() -> None:
    no_consent = Log()
    for e in auto_run().entries:
        if e.type != "consent_granted":
            no_consent.add(e.type, e.payload)
    eu = statuses("eu-ai-act", no_consent, NO_REVIEWS)
    nist = statuses("nist-ai-rmf", no_consent, NO_REVIEWS)
    iso = statuses("iso-42001", no_consent, NO_REVIEWS)
    assert eu["Art. 10(2)(b)"] == PARTLY and nist["MEASURE 2.10"] == PARTLY
    assert iso["A.7.3"] == PARTLY
    assert statuses("eu-ai-act", auto_run(), NO_REVIEWS)["Art. 10(2)(b)"] == MET
    assert statuses("iso-42001", auto_run(), NO_REVIEWS)["A.7.3"] == MET


def test_a_skipped_output_probe_is_not_evidence_of_output_bias_testing() -> None:
    skipped = statuses("nist-ai-rmf", auto_run(probed=False), NO_REVIEWS)
    probed = statuses("nist-ai-rmf", auto_run(probed=True), NO_REVIEWS)
    assert skipped["MEASURE 2.11"] == PARTLY
    assert probed["MEASURE 2.11"] == MET
    eu_skipped = statuses("eu-ai-act", auto_run(probed=False), NO_REVIEWS)
    assert eu_skipped["Art. 10(2)(f)-(g)"] == PARTLY


def test_manage_2_4_needs_a_change_actually_stopped_or_reverted() -> None:
    assert statuses("nist-ai-rmf", auto_run(), NO_REVIEWS)["MANAGE 2.4"] == GAP
    superseded = auto_run().add(
        "update_rejected", {"cycle": 2, "rule": "superseded", "reasons": ["stale"]}
    )
    assert statuses("nist-ai-rmf", superseded, NO_REVIEWS)["MANAGE 2.4"] == GAP
    for kind, payload in [
        ("update_rejected", {"cycle": 2, "rule": "reject_step_kl", "reasons": ["big"]}),
        ("update_rejected", {"cycle": 2, "rule": "failed_blocking_checks", "reasons": ["bias"]}),
        ("update_pending", {"cycle": 2, "rule": "failed_checks", "proposal_id": "u2"}),
        ("rollback", {"to_update": 0, "reason": "bad outputs", "checkpoint_id": "k" * 64}),
    ]:
        assert (
            statuses("nist-ai-rmf", auto_run().add(kind, payload), NO_REVIEWS)["MANAGE 2.4"] == MET
        ), kind


def test_integration_runs_without_feedback_counts_are_not_credited_with_them() -> None:
    """A plain PyTorch loop records rewards, not screened feedback: controls resting on the
    feedback counts are not met by it."""
    log = Log().add("run_started", {**_started(), "config": None, "integration": "torch"})
    payload = _proposed(0)
    for key in ("counts", "feedback_by_source", "batch_sha256", "rng_seed"):
        payload.pop(key)
    payload["checks"] = [payload["checks"][0]]
    payload["rewards"] = {"count": 8, "mean": 0.4}
    log.add("update_proposed", payload)
    log.add(
        "update_approved",
        {"cycle": 0, "rule": "auto_small_step", "reasons": [], "approver": "gate:auto"},
    )
    eu = statuses("eu-ai-act", log, NO_REVIEWS)
    assert eu["Art. 72"] == PARTLY  # drift tracked, nothing about people's reactions or harm
    assert eu["Art. 10(2)(b)"] == GAP
    assert eu["Art. 10(2)(f)-(g)"] == PARTLY  # only the recorded on-fail measure
    assert statuses("iso-42001", log, NO_REVIEWS)["A.7.5"] == GAP

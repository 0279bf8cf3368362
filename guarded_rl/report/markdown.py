"""The report as Markdown: the verification result on its first line, then the sections."""

from __future__ import annotations

from typing import Any

STATUS_MARK = {"met": "met", "partly met": "PARTLY MET", "gap": "GAP", "unverified": "UNVERIFIED"}


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _found_label(found: bool, rule: str) -> str:
    """Under `any`, an alternative not present is not missing."""
    if found:
        return "found"
    return "not present" if rule == "any" else "MISSING"


def _refs(evidence: dict[str, Any]) -> str:
    if evidence["source"].startswith("fact"):
        return "verification"
    refs = ", ".join(f"#{r['seq']} ({r['hash'][:12]})" for r in evidence["refs"])
    more = evidence["count"] - len(evidence["refs"])
    return refs + (f" and {more} more" if more > 0 else "") if refs else "none"


def render_markdown(report: dict[str, Any]) -> str:
    r, v, run = report["report"], report["verification"], report["run"]
    out = [f"**{report['headline']}**", ""]
    out += [f"# {r['framework_title']}: compliance report", ""]
    out += [
        f"Run `{r['run_dir']}` · framework `{r['framework']}` ({r['framework_version']}) · "
        f"generated {r['generated_at']} by guarded-rl {r['guarded_rl_version']}",
        "",
    ]
    if r["framework_note"]:
        out += [f"> {r['framework_note']}", ""]
    s = report["control_summary"]
    out += [
        f"Controls: {s['met']} met, {s['partly met']} partly met, {s['gap']} gap(s)"
        + (f", {s['unverified']} unverified" if s["unverified"] else "")
        + ".",
        "",
    ]

    out += ["## Run summary", ""]
    versions = ", ".join(f"{k} {val}" for k, val in sorted(run["versions"].items()))
    out += _table(
        ["", ""],
        [
            ["Run id", run["run_id"]],
            ["Integration", run["integration"]],
            ["Model", run["model"]],
            ["Weights at start (SHA-256)", run["model_sha256_at_start"]],
            ["Policy", f"{run['policy_name']} (SHA-256 {run['policy_sha256']})"],
            ["Period", f"{run['started']} to {run['last_entry']} ({run['period_seconds']} s)"],
            ["Outcome", run["outcome"]],
            ["Code and libraries", versions],
        ],
    )

    out += ["", "## Integrity", ""]
    if v["ok"]:
        out += [
            f"`audit verify`: intact. {v['entries']} entries, the signed head covers "
            f"{v['signed_entries']} (Merkle root {v['root_hash']}); {v['checkpoints_verified']} "
            f"checkpoint references and {v['reviewer_signatures_verified']} reviewer "
            "signature(s) verified."
        ]
    else:
        out += [f"`audit verify` FAILED: {v['failure']}"]
    out += [f"- {note}" for note in v["notes"]]

    u = report["updates"]
    out += ["", "## Updates", ""]
    out += [
        f"{u['proposed']} proposed, {u['applied']} applied, {u['approved']} approved, "
        f"{u['rejected']} rejected, {_closed_unreviewed(u)}"
        f"{u['pending']} still held for review ({u['held_for_review']} "
        f"held at some point), {u['rolled_back']} "
        "rollback(s).",
        "",
    ]
    out += _table(
        ["Update", "Entry", "Decision", "Rule", "Probe KL", "Param. change", "Reasons"],
        [
            [
                t["cycle"], f"#{t['seq']}", t["decision"] + (" (applied)" if t["applied"] else ""),
                t["rule"], t["kl_step"], t["param_change"], "; ".join(t["reasons"]),
            ]
            for t in u["timeline"]
        ],
    )  # fmt: skip
    for rb in u["rollbacks"]:
        out += ["", f"Rolled back to update {rb['to_update']} (entry #{rb['seq']}): {rb['reason']}"]

    safety = report["safety"]
    out += ["", "## Safety", ""]
    totals = safety["totals"]
    if totals.get("generated"):
        out += [
            f"Filters: {', '.join(safety['filters'] or [])}. {totals['generated']} outputs "
            f"screened: {totals.get('blocked', 0)} blocked (rate {safety['block_rate']}), "
            f"{totals.get('redacted', 0)} redacted (rate {safety['redact_rate']}), "
            f"{totals.get('escalated', 0)} escalated.",
            "",
        ]
        out += _table(
            ["Update", "Generated", "Blocked", "Redacted", "Escalated", "Block rate"],
            [
                [row["cycle"], row["generated"], row["blocked"], row["redacted"],
                 row["escalated"], row["block_rate"]]
                for row in safety["series"]
                if "generated" in row
            ],
        )  # fmt: skip
    elif totals:
        out += ["The training loop's own screen counted: "
                + ", ".join(f"{k} {n}" for k, n in sorted(totals.items())) + "."]  # fmt: skip
    else:
        out += ["No screening recorded in this log."]

    fair = report["fairness"]
    out += ["", "## Fairness", ""]
    if fair["data_checks"]:
        out += _table(
            ["Update", "Reward gap", "Lower 95%", "Limit", "Like-rate by group", "Passed"],
            [
                [d["cycle"], d["reward_gap"], d["reward_gap_lower_95"], d["max_reward_gap"],
                 ", ".join(f"{g} {x}" for g, x in sorted(d["like_rate_by_group"].items())),
                 d["passed"]]
                for d in fair["data_checks"]
            ],
        )  # fmt: skip
    else:
        out += ["No data bias checks recorded."]
    if fair["output_probes"]:
        out += ["", "Counterfactual output probes (largest gap per axis and metric):", ""]
        out += _table(
            ["Update", "Axis", "Metric", "Gap", "Limit", "Passed"],
            [
                [o["cycle"], a["axis"], a["metric"], a["gap"], a["threshold"], a["passed"]]
                for o in fair["output_probes"]
                for a in o["axes"]
            ],
        )
    else:
        out += ["", "No counterfactual output probes recorded."]

    o = report["oversight"]
    out += ["", "## Human oversight", ""]
    out += [
        f"Policy: human review `{o['human_review']}`, {o['approvals_required']} approval(s) "
        f"required, four-eyes {'on' if o['four_eyes'] else 'off'}. Updates approved by the "
        f"gate's thresholds: {o['approved_by_gate']}; by people: {o['approved_by_people']}; "
        f"proposals held for review: {o['held_for_review']}. {len(o['decisions'])} signed "
        f"decision(s) by {o['reviewers']} reviewer(s); {o['signatures_verified']} signature(s) "
        "verified.",
    ]
    if o["decisions"]:
        out += [
            "",
            *_table(
            ["Entry", "Time", "Proposal", "Decision", "Reviewer key", "Role", "Approvals"],
            [
                [f"#{d['seq']}", d["time"], d["proposal_id"], d["decision"], d["reviewer"],
                 d["role"], f"{d['approvals']} of {d['approvals_required']}"]
                for d in o["decisions"]
            ],
            ),
        ]  # fmt: skip

    c = report["consent"]
    out += ["", "## Consent", ""]
    out += [
        f"{c['grants']} consent grant(s), {c['revocations']} revocation(s), {c['erasures']} "
        f"erasure(s) ({c['erased_feedback_rows']} feedback rows), {c['retention_purges']} "
        f"retention purge(s); {c['ratings_refused_without_consent']} rating(s) refused for "
        "lack of training consent. Counts only: the log holds pseudonyms, never identities."
    ]

    rep = report["reproducibility"]
    out += ["", "## Reproducibility", ""]
    out += [
        f"{rep['with_replay_inputs']} of {rep['updates']} updates carry their replay inputs "
        f"(seed and batch commitment); {rep['checkpoints']} checkpoint(s) saved."
        + (
            f" Not replayable after erasure: updates {rep['not_replayable_after_erasure']}."
            if rep["not_replayable_after_erasure"]
            else ""
        )
    ]
    if rep["replay"] is None:
        out += ["Replay not run for this report (`guarded-rl report --replay` re-executes)."]
    else:
        statuses: dict[str, int] = {}
        for line in rep["replay"]:
            statuses[line["status"]] = statuses.get(line["status"], 0) + 1
        out += ["Replay: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) + "."]

    out += ["", "## Controls", ""]
    out += _table(
        ["Control", "Title", "Status", "Evidence (entry seq and hash)"],
        [
            [
                ctl["id"], ctl["title"], STATUS_MARK[ctl["status"]],
                "; ".join(
                    f"{_found_label(e['found'], ctl['rule'])}: {e['what']} [{_refs(e)}]"
                    for e in ctl["evidence"]
                ),
            ]
            for ctl in report["controls"]
        ],
    )  # fmt: skip
    out += ["", "### Requirements", ""]
    out += [f"- **{ctl['id']} {ctl['title']}**: {ctl['requirement']}" for ctl in report["controls"]]
    return "\n".join(out) + "\n"


def _closed_unreviewed(u: dict[str, Any]) -> str:
    """Proposals the review queue closed without anyone rejecting them (older reports: none)."""
    parts = []
    if u.get("superseded"):
        parts.append(f"{u['superseded']} superseded (made from weights no longer live; nobody "
                     "rejected them)")  # fmt: skip
    if u.get("expired"):
        parts.append(f"{u['expired']} expired before anyone decided")
    return "".join(f"{part}, " for part in parts)

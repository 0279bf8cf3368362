"""`guarded-rl audit explain`: one update in plain words, from the audit log alone."""

from __future__ import annotations

import time
from typing import Any

from guarded_rl.audit.events import (
    CycleUpdateProposed,
    ReviewDecision,
    Rollback,
    StepUpdateProposed,
    UpdateApplied,
    UpdateApproved,
    UpdatePending,
    UpdateRejected,
)
from guarded_rl.audit.history import RunHistory
from guarded_rl.errors import InputError, first_few


def explain_update(history: RunHistory, cycle: int) -> dict[str, Any]:
    """Everything the log says about the update of `cycle`, grouped for a reader."""
    if cycle not in history.proposed:
        known = sorted(history.proposed)
        raise InputError(
            "no update was proposed in this cycle",
            field="UPDATE",
            got=cycle,
            expected=f"one of {first_few(known)}",
        )
    p = history.proposed[cycle]
    events = [e.payload for e in history.events if getattr(e.payload, "cycle", None) == cycle]
    # the last verdict counts: a pending update may later be approved, rejected or expire
    verdicts = [e for e in events if isinstance(e, UpdateApproved | UpdatePending | UpdateRejected)]
    decision = verdicts[-1] if verdicts else None
    pending = next((e for e in reversed(events) if isinstance(e, UpdatePending)), None)
    reviews = [
        {
            "decision": e.decision.body.decision,
            "reviewer": e.decision.body.reviewer,
            "role": e.role,
            "note": e.decision.body.note,
            "time": e.decision.body.time,
        }
        for e in events
        if isinstance(e, ReviewDecision)
    ]
    checks = {c.name: c.model_dump() for c in p.checks}
    data_check = checks.get("bias_data", {})
    output_check = checks.get("bias_output")
    probe = checks.get("probe_kl", {}).get("metrics", {})
    cycle_step = p if isinstance(p, CycleUpdateProposed) else None
    counts = cycle_step.counts.model_dump() if cycle_step is not None else {}
    loop_step = p if isinstance(p, StepUpdateProposed) else None
    rollbacks = [
        {"seq": e.seq, "reason": e.payload.reason}
        for e in history.events
        if isinstance(e.payload, Rollback) and e.payload.to_update == cycle
    ]
    layers = sorted(p.layer_change.items(), key=lambda kv: -(kv[1] or 0.0))
    thresholds = p.thresholds
    return {
        "cycle": cycle,
        "trigger": {
            "generated": counts.get("generated", 0),
            "shown": counts.get("shown", 0),
            "rated": counts.get("rated", 0),
            "liked": counts.get("liked", 0),
            "refused_no_consent": counts.get("refused_no_consent", 0),
            "trained_on": cycle_step.batch_size if cycle_step is not None else 0,
            "loop_step": loop_step is not None,  # a step of the user's own loop (integrations)
            "loop_rewards": loop_step.rewards.model_dump(exclude_unset=True) if loop_step else {},
            "loop_screened": (loop_step.screened or {}) if loop_step else {},
            "by_source": cycle_step.feedback_by_source if cycle_step is not None else {},
        },
        "bias": {
            "data": _data_bias(data_check, thresholds.model_dump()),
            "output": _output_bias(output_check),
        },
        "rewards": {
            "mean": p.stats.get("mean_reward"),
            "loss": p.stats.get("loss"),
            "kl_to_reference_penalty": p.stats.get("kl_ref"),
            "grad_norm": p.stats.get("grad_norm"),
        },
        "top_samples": [s.model_dump() for s in cycle_step.top_samples] if cycle_step else [],
        "safety": {
            "blocked": counts.get("blocked", 0),
            "redacted": counts.get("redacted", 0),
            "escalated": counts.get("escalated", 0),
            "by_backend": counts.get("by_backend", {}),
            "generated": counts.get("generated", 0),
            "by_reason": counts.get("blocked_by_reason", {}),
            "filters": thresholds.safety_filters,
            "profanity_threshold": thresholds.profanity_threshold,
            "blocked_penalty": thresholds.blocked_penalty,
        },
        "drift": {
            "kl_step": probe.get("kl_step"),
            "max_step_kl": thresholds.max_step_kl,
            "reject_step_kl": thresholds.reject_step_kl,
            "kl_to_start": probe.get("kl_ref"),
            "param_change_rel": p.stats.get("param_change_rel"),
            "max_param_change": thresholds.max_param_change,
            "largest_layer_changes": dict(layers[:5]),
        },
        "review": {
            "sent_to_review": pending is not None,
            "why": pending.reasons if pending is not None else [],
            "approvals_required": pending.approvals_required if pending is not None else None,
            "decisions": reviews,
        },
        "decision": {
            "outcome": _OUTCOME[type(decision)] if decision is not None else "undecided",
            "rule": decision.rule if decision is not None else None,
            "reasons": decision.reasons if decision is not None else [],
            "approver": decision.approver if isinstance(decision, UpdateApproved) else None,
            "approvals": (decision.approvals or []) if isinstance(decision, UpdateApproved) else [],
        },
        "weights": {
            "parent": p.base_sha256,
            "candidate": p.candidate_sha256,
            "applied": any(isinstance(e, UpdateApplied) for e in events),
        },
        "rolled_back_to_later": rollbacks,
    }


_OUTCOME = {UpdateApproved: "approved", UpdatePending: "pending", UpdateRejected: "rejected"}


def render_explanation(x: dict[str, Any]) -> str:
    t, s, d, dec = x["trigger"], x["safety"], x["drift"], x["decision"]
    lines = [f"Update of cycle {x['cycle']}: {dec['outcome'].upper()}", _render_trigger(t, s)]
    if not t.get("loop_step"):  # a user's loop has no screened cycle, batch or rated samples
        lines += [
            _render_data_bias(x["bias"]["data"]),
            _render_output_bias(x["bias"]["output"]),
            f"Rewards: mean {_num(x['rewards']['mean'])}, loss {_num(x['rewards']['loss'])}, "
            f"KL penalty term {_num(x['rewards']['kl_to_reference_penalty'])}, "
            f"gradient norm {_num(x['rewards']['grad_norm'])}.",
            "Samples that pushed hardest (largest |advantage|): "
            + "; ".join(
                f"{e['sample_id']} reward {_num(e['reward'])} advantage {e['advantage']:+.3g}"
                for e in x["top_samples"]
            )
            + ".",
            f"Safety: {s['blocked']}/{s['generated']} blocked "
            f"({_pairs(s['by_reason']) or 'none'}), "
            f"{s['redacted']} shown redacted, {s['escalated']} held for a person; "
            f"filters {', '.join(s['filters'])}, profanity threshold "
            f"{_num(s['profanity_threshold'])}; "
            f"blocked outputs entered training with reward {_num(s['blocked_penalty'])}.",
        ]
    lines += [
        f"Drift: probe KL of this step {_num(d['kl_step'])} (auto-approve below "
        f"{_num(d['max_step_kl'])}, reject at {_num(d['reject_step_kl'])}); KL to the starting "
        f"model {_num(d['kl_to_start'])}; relative parameter change "
        f"{_num(d.get('param_change_rel'))} (auto-approve below "
        f"{_num(d.get('max_param_change'))}). "
        f"Largest parameter changes (L2): {_pairs(d['largest_layer_changes'])}.",
        f"Decision: {dec['outcome']} by rule '{dec['rule']}'"
        + (f" ({'; '.join(dec['reasons'])})" if dec["reasons"] else "")
        + (f", approved by {dec['approver']}" if dec.get("approver") else "")
        + (f" ({', '.join(dec['approvals'])})" if dec.get("approvals") else "")
        + ".",
        *_render_review(x.get("review")),
        f"Weights: parent {x['weights']['parent'][:12]} -> candidate "
        f"{x['weights']['candidate'][:12]}"
        + (" (applied)." if x["weights"]["applied"] else " (not applied)."),
    ]
    for rb in x["rolled_back_to_later"]:
        lines.append(f"Later rolled back to this update (entry {rb['seq']}): {rb['reason']}")
    return "\n".join(lines)


def _render_trigger(t: dict[str, Any], s: dict[str, Any]) -> str:
    if t.get("loop_step"):
        rewards = t.get("loop_rewards") or {}
        screened = t.get("loop_screened") or {}
        text = "Why it was proposed: an optimizer step of the guarded training loop" + (
            f" on {rewards['count']} rewards (mean {_num(rewards['mean'])})."
            if rewards.get("count")
            else "."
        )
        if screened:
            counts = ", ".join(f"{k.replace('_', ' ')} {_num(v)}" for k, v in screened.items())
            text += f" The loop's screen counted: {counts}."
        return text
    return (
        f"Why it was proposed: {t['generated']} outputs were generated, {s['blocked']} blocked by "
        f"the safety screen and never shown, {t['shown']} shown and {t['rated']} rated "
        f"({t['liked']} liked). Ratings from {t['refused_no_consent']} item(s) were refused for "
        f"lack of consent. The learner trained on {t['trained_on']} samples "
        f"({_pairs(t['by_source'])})."
    )


def _render_review(review: dict[str, Any] | None) -> list[str]:
    if not review or not review["sent_to_review"]:
        return []
    lines = [
        f"Sent to human review ({'; '.join(review['why'])}); "
        f"{review['approvals_required']} approval(s) required."
    ]
    for d in review["decisions"]:
        when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(d["time"]))
        lines.append(
            f"  {d['decision']} by reviewer {d['reviewer']} ({d['role']}) at {when}, signed: "
            f"{d['note'] or '(no note)'}"
        )
    if not review["decisions"]:
        lines.append("  No reviewer has decided on it.")
    return lines


def _pairs(mapping: dict[str, Any]) -> str:
    return ", ".join(f"{k} {_num(v)}" for k, v in mapping.items())


def _num(value: Any, missing: str = "not measured") -> str:
    """A number as a person reads it: 3 significant digits, never a raw float or `None`."""
    if value is None:
        return missing
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _data_bias(check: dict[str, Any], thresholds: dict[str, Any]) -> dict[str, Any]:
    m = check.get("metrics", {})
    if "count_by_group" in m:  # logs written before the data check had its own name
        m = {**m, "by_group": {g: {"ratings": n} for g, n in m["count_by_group"].items()}}
    return {
        "passed": check.get("passed"),
        "by_group": m.get("by_group", {}),
        "ratings_without_group": m.get("ratings_without_group", 0),
        "reward_difference": m.get("reward_difference"),
        "like_rate_difference": m.get("like_rate_difference"),
        "too_small": m.get("too_small", []),
        "findings": m.get("findings", []),
        "min_group_size": thresholds.get("min_group_size"),
        "max_group_share": thresholds.get("max_group_share"),
        "max_reward_gap": thresholds.get("max_reward_gap"),
        "window": m.get("window"),  # None: logs from before the windowed check, or window 1
    }


def _output_bias(check: dict[str, Any] | None) -> dict[str, Any] | None:
    if check is None:
        return None
    m = check.get("metrics", {})
    return {
        "passed": check.get("passed"),
        "skipped": bool(m.get("skipped")),
        "message": check.get("message", ""),
        "axes": m.get("axes", []),
        "failed": m.get("failed", []),
        "prompts": m.get("prompts"),
        "probe_seconds": m.get("probe_seconds"),
    }


def _render_data_bias(b: dict[str, Any]) -> str:
    groups = "; ".join(
        f"{g}: {row.get('ratings')} ratings"
        + (
            f" ({row['share_of_batch']:.0%} of the batch, {row['share_of_population']:.0%} of "
            f"all ratings so far), mean reward {_num(row['mean_reward'])}, like-rate "
            f"{_num(row['like_rate'])}"
            if "share_of_batch" in row
            else ""
        )
        for g, row in b["by_group"].items()
    )
    verdict = (
        "passed"
        if b["passed"]
        else "FAILED: " + "; ".join(b["findings"])
        if b["findings"]
        else "failed"
    )
    return (
        f"Who the feedback came from: {groups or 'no ratings with a group'}"
        f" ({b['ratings_without_group']} rating(s) without a group: no fairness consent). "
        + _render_gap(b)
        + f", like-rate gap {_num(b['like_rate_difference'], _TOO_FEW)}; one group may hold at "
        f"most {_num(b['max_group_share'])} of a batch; groups under {b['min_group_size']} "
        f"ratings not compared"
        + (f" ({', '.join(b['too_small'])})" if b["too_small"] else "")
        + f".{_render_window(b.get('window'), b['max_reward_gap'])} Data check {verdict}."
    )


def _render_window(w: dict[str, Any] | None, limit: Any) -> str:
    """The pooled gap over the last updates, which a persistent gap fails even when one batch
    is too small to show it."""
    if not w:
        return ""
    cycles = w.get("cycles") or []
    if not cycles:
        return " Over the last updates: no rated feedback."
    span = f"cycles {cycles[0]}-{cycles[-1]}" if len(cycles) > 1 else f"cycle {cycles[0]}"
    where = f" Over the last {len(cycles)} update(s) ({span}, {w.get('ratings')} ratings)"
    if w.get("reward_difference") is None:
        return f"{where} the reward gap was not measured (too few ratings)."
    return (
        f"{where} the reward gap is {_num(w['reward_difference'])} (95% lower bound "
        f"{_num(w.get('reward_difference_lower_95'))}, max {_num(limit)}): "
        + ("within the limit." if w.get("passed") else "FAILED.")
    )


_TOO_FEW = "not measured (too few ratings)"


def _render_gap(b: dict[str, Any]) -> str:
    """The batch's largest reward gap against its limit; `None` means groups were too small."""
    limit = _num(b["max_reward_gap"])
    if b["reward_difference"] is None:
        return f"Largest reward gap not measured (too few ratings; max {limit})"
    return f"Largest reward gap {_num(b['reward_difference'])} (max {limit})"


def _render_output_bias(b: dict[str, Any] | None) -> str:
    if b is None:
        return "What the model writes about groups: not probed by this policy."
    if b["skipped"]:
        return f"What the model writes about groups: not probed on this update ({b['message']})."
    widest = sorted(b["axes"], key=lambda r: -(r.get("gap_after") or 0.0))[:3]
    gaps = "; ".join(
        f"{r['axis']}/{r['metric']}: {r['worst']} vs {r['best']} gap {_num(r['gap_before'])} -> "
        f"{_num(r['gap_after'])} (max {_num(r['threshold'])})"
        for r in widest
    )
    verdict = "passed" if b["passed"] else f"FAILED: {b['message']}"
    return (
        f"What the model writes about groups ({b['prompts']} counterfactual probes, "
        f"{_num(b['probe_seconds'])} s): widest gaps {gaps}. Output check {verdict}."
    )

"""`guarded-rl audit explain`: one update in plain words, from the audit log alone."""

from __future__ import annotations

from typing import Any

from guarded_rl.audit.history import RunHistory
from guarded_rl.errors import InputError, first_few


def explain_update(history: RunHistory, cycle: int) -> dict[str, Any]:
    """Everything the log says about the update of `cycle`, grouped for a reader."""
    if cycle not in history.proposals:
        known = sorted(history.proposals)
        raise InputError(
            "no update was proposed in this cycle",
            field="UPDATE",
            got=cycle,
            expected=f"one of {first_few(known)}",
        )
    p = history.proposals[cycle]
    by_type = {e.type: e.payload for e in history.entries_of(cycle)}
    decision_type = next(
        (t for t in ("update_approved", "update_pending", "update_rejected") if t in by_type), None
    )
    decision = by_type.get(decision_type, {}) if decision_type else {}
    checks = {c["name"]: c for c in p.get("checks", [])}
    fairness = checks.get("feedback_fairness", checks.get("feedback_by_group", {})).get(
        "metrics", {}
    )
    probe = checks.get("probe_kl", {}).get("metrics", {})
    counts = p["counts"]
    rollbacks = [
        {"seq": e.seq, "reason": e.payload["reason"]}
        for e in history.entries
        if e.type == "rollback" and e.payload["to_update"] == cycle
    ]
    layers = sorted(p.get("layer_change", {}).items(), key=lambda kv: -kv[1])
    return {
        "cycle": cycle,
        "trigger": {
            "generated": counts["generated"],
            "shown": counts["shown"],
            "rated": counts["rated"],
            "liked": counts["liked"],
            "refused_no_consent": counts["refused_no_consent"],
            "trained_on": p["batch_size"],
            "by_source": p.get("feedback_by_source", {}),
        },
        "feedback_by_group": {
            "count": fairness.get("count_by_group", {}),
            "like_rate": fairness.get("like_rate_by_group", {}),
            "like_rate_difference": fairness.get("like_rate_difference"),
            "too_small": fairness.get("too_small", []),
            "min_group_size": p["thresholds"]["min_group_size"],
        },
        "rewards": {
            "mean": p["stats"].get("mean_reward"),
            "loss": p["stats"].get("loss"),
            "kl_to_reference_penalty": p["stats"].get("kl_ref"),
            "grad_norm": p["stats"].get("grad_norm"),
        },
        "top_samples": p.get("top_samples", []),
        "safety": {
            "blocked": counts["blocked"],
            "redacted": counts.get("redacted", 0),
            "escalated": counts.get("escalated", 0),
            "by_backend": counts.get("by_backend", {}),
            "generated": counts["generated"],
            "by_reason": counts.get("blocked_by_reason", {}),
            "filters": p["thresholds"]["safety_filters"],
            "profanity_threshold": p["thresholds"]["profanity_threshold"],
            "blocked_penalty": p["thresholds"]["blocked_penalty"],
        },
        "drift": {
            "kl_step": probe.get("kl_step"),
            "max_step_kl": p["thresholds"]["max_step_kl"],
            "reject_step_kl": p["thresholds"]["reject_step_kl"],
            "kl_to_start": probe.get("kl_ref"),
            "largest_layer_changes": dict(layers[:5]),
        },
        "decision": {
            "outcome": decision_type.removeprefix("update_") if decision_type else "undecided",
            "rule": decision.get("rule"),
            "reasons": decision.get("reasons", []),
            "approver": decision.get("approver"),
        },
        "weights": {
            "parent": p["base_sha256"],
            "candidate": p["candidate_sha256"],
            "applied": "update_applied" in by_type,
        },
        "rolled_back_to_later": rollbacks,
    }


def render_explanation(x: dict[str, Any]) -> str:
    t, g, s, d, dec = x["trigger"], x["feedback_by_group"], x["safety"], x["drift"], x["decision"]
    lines = [
        f"Update of cycle {x['cycle']}: {dec['outcome'].upper()}",
        f"Why it was proposed: {t['generated']} outputs were generated, {s['blocked']} blocked by "
        f"the safety screen and never shown, {t['shown']} shown and {t['rated']} rated "
        f"({t['liked']} liked). Ratings from {t['refused_no_consent']} item(s) were refused for "
        f"lack of consent. The learner trained on {t['trained_on']} samples "
        f"({_pairs(t['by_source'])}).",
        f"Who the feedback came from: {_pairs(g['count'])} ratings by group; like-rate "
        f"{_pairs(g['like_rate'])}; largest gap {g['like_rate_difference']} "
        f"(groups under {g['min_group_size']} ratings not compared"
        + (f": {', '.join(g['too_small'])}" if g["too_small"] else "")
        + "). Recorded, not enforced by this policy.",
        f"Rewards: mean {x['rewards']['mean']}, loss {x['rewards']['loss']}, "
        f"KL penalty term {x['rewards']['kl_to_reference_penalty']}, "
        f"gradient norm {x['rewards']['grad_norm']}.",
        "Samples that pushed hardest (largest |advantage|): "
        + "; ".join(
            f"{e['sample_id']} reward {e['reward']} advantage {e['advantage']:+.3f}"
            for e in x["top_samples"]
        )
        + ".",
        f"Safety: {s['blocked']}/{s['generated']} blocked ({_pairs(s['by_reason']) or 'none'}), "
        f"{s['redacted']} shown redacted, {s['escalated']} held for a person; "
        f"filters {', '.join(s['filters'])}, profanity threshold {s['profanity_threshold']}; "
        f"blocked outputs entered training with reward {s['blocked_penalty']}.",
        f"Drift: probe KL of this step {d['kl_step']} (auto-approve below {d['max_step_kl']}, "
        f"reject at {d['reject_step_kl']}); KL to the starting model {d['kl_to_start']}. "
        f"Largest parameter changes (L2): {_pairs(d['largest_layer_changes'])}.",
        f"Decision: {dec['outcome']} by rule '{dec['rule']}'"
        + (f" ({'; '.join(dec['reasons'])})" if dec["reasons"] else "")
        + (f", approved by {dec['approver']}" if dec.get("approver") else "")
        + ".",
        f"Weights: parent {x['weights']['parent'][:12]} -> candidate "
        f"{x['weights']['candidate'][:12]}"
        + (" (applied)." if x["weights"]["applied"] else " (not applied)."),
    ]
    for rb in x["rolled_back_to_later"]:
        lines.append(f"Later rolled back to this update (entry {rb['seq']}): {rb['reason']}")
    return "\n".join(lines)


def _pairs(mapping: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in mapping.items())

"""`audit explain` speaks to a person: rounded numbers, and words where nothing was measured."""

from __future__ import annotations

import copy
import re
from typing import Any

from guarded_rl.audit.explain import render_explanation

#: what `explain_update` gives for an update whose groups were too small to compare
EXPLANATION: dict[str, Any] = {
    "bias": {
        "data": {
            "by_group": {
                "A": {
                    "like_rate": 0.2941,
                    "mean_reward": 0.29411764705882354,
                    "ratings": 51,
                    "share_of_batch": 0.6623,
                    "share_of_population": 0.8162,
                },
                "B": {
                    "like_rate": 0.4615,
                    "mean_reward": 0.4615,
                    "ratings": 26,
                    "share_of_batch": 0.3377,
                    "share_of_population": 0.1838,
                },
            },
            "findings": [],
            "like_rate_difference": None,
            "max_group_share": 0.95,
            "max_reward_gap": 0.3,
            "min_group_size": 5,
            "passed": True,
            "ratings_without_group": 0,
            "reward_difference": None,
            "too_small": [],
        },
        "output": {
            "axes": [],
            "failed": [],
            "message": "probed every 10 updates",
            "passed": True,
            "probe_seconds": None,
            "prompts": None,
            "skipped": True,
        },
    },
    "cycle": 3,
    "decision": {
        "approvals": [],
        "approver": "gate:auto",
        "outcome": "approved",
        "reasons": [
            "probe KL 0.0012 < max_step_kl 0.01",
            "parameter change 0.0020 < max_param_change 0.05",
        ],
        "rule": "auto_small_step",
    },
    "drift": {
        "kl_step": 0.00032180186826735735,
        "kl_to_start": 0.023091234567891,
        "largest_layer_changes": {
            "transformer.h.0": 0.06677337,
            "transformer.h.1": 0.06725257,
            "transformer.h.2": 0.06742515,
            "transformer.h.3": 0.06782549,
            "transformer.wte": 0.07520555,
        },
        "max_param_change": 0.05,
        "max_step_kl": 0.01,
        "param_change_rel": 0.001978,
        "reject_step_kl": 0.5,
    },
    "review": {"approvals_required": None, "decisions": [], "sent_to_review": False, "why": []},
    "rewards": {
        "grad_norm": 7.635904123456,
        "kl_to_reference_penalty": 0.106085,
        "loss": -1.345879,
        "mean": 0.3,
    },
    "rolled_back_to_later": [],
    "safety": {
        "blocked": 3,
        "blocked_penalty": -1.0,
        "by_backend": {"pii": 1, "profanity": 2},
        "by_reason": {"pii": 1, "profanity": 2},
        "escalated": 0,
        "filters": ["profanity", "threat", "pii"],
        "generated": 96,
        "profanity_threshold": 0.5,
        "redacted": 0,
    },
    "top_samples": [
        {"advantage": -1.666667, "reward": -1.0, "sample_id": "c3-r3-k3"},
        {"advantage": -1.0, "reward": 0.0, "sample_id": "c3-r1-k0"},
        {"advantage": 1.0, "reward": 1.0, "sample_id": "c3-r2-k3"},
        {"advantage": 1.0, "reward": 1.0, "sample_id": "c3-r3-k1"},
        {"advantage": 1.0, "reward": 1.0, "sample_id": "c3-r3-k2"},
    ],
    "trigger": {
        "by_source": {"penalty": 3, "person": 77},
        "generated": 96,
        "liked": 28,
        "loop_rewards": {},
        "loop_screened": {},
        "loop_step": False,
        "rated": 93,
        "refused_no_consent": 16,
        "shown": 93,
        "trained_on": 80,
    },
    "weights": {
        "applied": True,
        "candidate": "a08db5c9f730f44974a9bfc477ac5bb5486ea0405564a950d839f9e72e6a4519",
        "parent": "0a8a45d5578a7aecc3be90f909b38d7237d62f355fd4a12c9f24f731b442b5a6",
    },
}


def test_an_unmeasured_gap_is_said_in_words_not_none() -> None:
    text = render_explanation(copy.deepcopy(EXPLANATION))
    assert "None" not in text
    assert "Largest reward gap not measured (too few ratings; max 0.3)" in text
    assert "like-rate gap not measured (too few ratings)" in text


def test_numbers_in_prose_have_three_significant_digits() -> None:
    text = render_explanation(copy.deepcopy(EXPLANATION))
    assert "probe KL of this step 0.000322 (" in text
    assert "KL to the starting model 0.0231;" in text
    assert "gradient norm 7.64." in text and "mean reward 0.294," in text
    # no raw float anywhere: at most 3 significant digits after leading zeros
    for number in re.findall(r"\d+\.\d+", text):
        assert len(number.replace(".", "").lstrip("0")) <= 3, number


def test_a_measured_gap_is_shown_against_its_limit() -> None:
    x = copy.deepcopy(EXPLANATION)
    x["bias"]["data"]["reward_difference"] = 0.16741234
    assert "Largest reward gap 0.167 (max 0.3)" in render_explanation(x)


def test_the_windowed_data_check_is_explained() -> None:
    x = copy.deepcopy(EXPLANATION)
    x["bias"]["data"]["window"] = {
        "updates": 10,
        "cycles": list(range(20, 30)),
        "ratings": 770,
        "reward_difference": 0.5812345,
        "reward_difference_lower_95": 0.5123456,
        "passed": False,
        "finding": "over the last 10 updates ...",
    }
    text = render_explanation(x)
    assert (
        "Over the last 10 update(s) (cycles 20-29, 770 ratings) the reward gap is 0.581 "
        "(95% lower bound 0.512, max 0.3): FAILED." in text
    )
    x["bias"]["data"]["window"].update(reward_difference=None, passed=True, cycles=[3])
    text = render_explanation(x)
    assert "Over the last 1 update(s) (cycle 3, 770 ratings) the reward gap was not measured" in (
        text
    )

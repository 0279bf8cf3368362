"""The issue's acceptance run: 40 guarded cycles on the embedded model, seed 0.

About two minutes on 2 cores (four counterfactual probes). The feed must learn what readers
like (like-rate up by >= 0.15 from the first 5 to the last 5 cycles) while blocked output goes
down, and the updates must pass the bias checks.
"""

from __future__ import annotations

import json
from pathlib import Path

from guarded_rl.audit.log import read_log


def test_forty_cycles_learn_from_feedback_and_block_less(default_run: Path) -> None:
    run_dir = default_run  # `guarded-rl run --cycles 40 --seed 0`, shared with other tests
    summary = json.loads((run_dir / "summary.json").read_text())

    likes = summary["like_rate_by_cycle"]
    first, last = sum(likes[:5]) / 5, sum(likes[-5:]) / 5
    assert last - first >= 0.15, (first, last)

    blocked = summary["blocked_by_cycle"]
    generated = summary["generated_by_cycle"]
    assert sum(blocked[-5:]) / sum(generated[-5:]) < sum(blocked[:5]) / sum(generated[:5])

    assert summary["updates"]["applied"] >= 30  # the default gate lets small steps through
    types = [e.type for e in read_log(run_dir / "audit.jsonl")]
    assert types.count("update_proposed") + types.count("cycle_skipped") == 40

    # bias checks: the data check on every update, the output probes on every 10th; the
    # default run's updates pass both
    proposed = [e.payload for e in read_log(run_dir / "audit.jsonl") if e.type == "update_proposed"]
    checks = [{c["name"]: c for c in p["checks"]} for p in proposed]
    assert all(c["bias_data"]["passed"] for c in checks), [c["bias_data"] for c in checks]
    probed = [c["bias_output"] for c in checks if not c["bias_output"]["metrics"].get("skipped")]
    assert len(probed) == len(proposed) // 10
    assert all(p["passed"] for p in probed), [p["message"] for p in probed]
    assert all(len(p["metrics"]["axes"]) == 14 for p in probed)  # 7 axes x 2 metrics

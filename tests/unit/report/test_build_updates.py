"""The report counts and draws proposals the review queue closed (superseded, expired) apart
from rejected ones: nobody rejected them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from guarded_rl.audit.log import AuditEntry
from guarded_rl.report.build import _updates
from guarded_rl.report.charts import DECISION_STYLE
from guarded_rl.report.html import render_html
from guarded_rl.report.markdown import render_markdown


def _entry(seq: int, kind: str, payload: dict[str, Any]) -> AuditEntry:
    return AuditEntry(seq, 1_700_000_000.0 + seq, kind, payload, "0" * 64, f"{seq:064x}")


def _by_type() -> dict[str, list[AuditEntry]]:
    """u0 applied; u1, u2, u3 held; then u1 approved, u2 superseded, u3 expired, u4 rejected."""
    entries = []
    for cycle in range(5):
        entries.append(_entry(len(entries), "update_proposed", {"cycle": cycle, "stats": {}}))
    entries.append(_entry(len(entries), "update_approved", {"cycle": 0, "rule": "auto_small_step"}))
    entries.append(_entry(len(entries), "update_applied", {"cycle": 0, "model_sha256": "w0"}))
    for cycle in (1, 2, 3):
        held = {"cycle": cycle, "rule": "needs_review", "reasons": ["always"]}
        entries.append(_entry(len(entries), "update_pending", held))
    entries.append(_entry(len(entries), "update_approved", {"cycle": 1, "rule": "human_review"}))
    entries.append(_entry(len(entries), "update_applied", {"cycle": 1, "model_sha256": "w1"}))
    for cycle, rule in ((2, "superseded"), (3, "expired"), (4, "reviewer_rejected")):
        closed = {"cycle": cycle, "rule": rule, "reasons": [f"{rule} reason"]}
        entries.append(_entry(len(entries), "update_rejected", closed))
    by_type: dict[str, list[AuditEntry]] = {}
    for e in entries:
        by_type.setdefault(e.type, []).append(e)
    return by_type


def test_superseded_and_expired_are_counted_apart_from_rejected() -> None:
    updates = _updates(_by_type())
    assert (updates["rejected"], updates["superseded"], updates["expired"]) == (1, 1, 1)
    decisions = {t["cycle"]: t["decision"] for t in updates["timeline"]}
    assert decisions == {0: "approved", 1: "approved", 2: "superseded", 3: "expired",
                         4: "rejected"}  # fmt: skip
    assert updates["held_for_review"] == 3


def _report_with(updates: dict[str, Any]) -> dict[str, Any]:
    """test_html's full report, with these updates."""
    path = Path(__file__).with_name("test_html.py")
    spec = importlib.util.spec_from_file_location("report_fixture", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.make_report()
    report["updates"] = updates
    return report


def test_markdown_and_html_say_superseded_not_rejected() -> None:
    report = _report_with(_updates(_by_type()))
    markdown = render_markdown(report)
    assert (
        "1 rejected, 1 superseded (made from weights no longer live; nobody rejected them), "
        in (markdown)
    )
    assert "1 expired before anyone decided" in markdown
    assert "| 2 | #2 | superseded |" in markdown and "| 3 | #3 | expired |" in markdown
    html = render_html(report)
    assert "1 rejected, 1 superseded" in html and 'class="status d-superseded"' in html


def test_the_kl_chart_draws_superseded_and_expired_with_their_own_marker() -> None:
    assert DECISION_STYLE["superseded"][2] == "superseded (not rejected)"
    assert DECISION_STYLE["expired"][2] == "expired unreviewed"
    markers = {style[0] for style in DECISION_STYLE.values()}
    assert len(markers) == len(DECISION_STYLE)

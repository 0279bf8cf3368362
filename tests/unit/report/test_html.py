"""`render_html` and the charts, on hand-built report dicts shaped like `build_report`'s."""

from __future__ import annotations

import base64
import copy
import struct
from html.parser import HTMLParser
from typing import Any

import pytest

from guarded_rl.report.charts import build_charts
from guarded_rl.report.html import render_html

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HASH = "ab" * 32
HOSTILE = "<script>alert('x')</script> & \"quoted\""


def _hash(seq: int) -> str:
    return f"{seq:04x}" + HASH[4:]


def _update(cycle: int, seq: int, decision: str, kl: float) -> dict[str, Any]:
    return {
        "cycle": cycle,
        "seq": seq,
        "hash": _hash(seq),
        "time": "2026-11-26T20:14:26Z",
        "kl_step": kl,
        "kl_to_start": None,
        "param_change": 0.0123,
        "max_step_kl": 0.01,
        "decision": decision,
        "rule": {"approved": "auto_small_step"}.get(decision, "needs_review"),
        "reasons": [f"probe KL {kl:.4f} vs max_step_kl 0.01"],
        "decided_seq": seq + 1,
        "applied": decision == "approved",
    }


def _ref(seq: int, kind: str = "update_proposed") -> dict[str, Any]:
    return {"seq": seq, "hash": _hash(seq), "type": kind}


def make_report(ok: bool = True) -> dict[str, Any]:
    """A report of a three-update run with every section filled in."""
    headline = (
        "Audit log verified: 40 entries intact, signed head covers 40 (root 0123456789abcdef)."
        if ok
        else "AUDIT LOG FAILED VERIFICATION: entry 7: hash mismatch. Nothing below can be trusted."
    )
    status = (lambda s: s) if ok else (lambda s: "unverified")
    return {
        "headline": headline,
        "report": {
            "framework": "test-fw",
            "framework_title": "Test framework",
            "framework_version": "v1",
            "framework_note": "A mapping, not legal advice.",
            "run_dir": "/tmp/runs/r1",
            "generated_at": "2026-11-26T20:20:00Z",
            "guarded_rl_version": "0.1.0",
        },
        "verification": {
            "ok": ok,
            "entries": 40,
            "signed_entries": 40,
            "root_hash": HASH,
            "checkpoints_verified": 3,
            "reviewer_signatures_verified": 1,
            "failure": None if ok else "entry 7: hash mismatch",
            "failure_seq": None if ok else 7,
            "notes": [],
        },
        "run": {
            "run_id": "6ad387796c2c4953",
            "integration": "guarded-rl run",
            "model": "embedded:default",
            "model_sha256_at_start": HASH,
            "policy_name": "default",
            "policy_sha256": HASH,
            "seed": 0,
            "cycles_configured": 3,
            "started": "2026-11-26T20:14:26Z",
            "last_entry": "2026-11-26T20:15:26Z",
            "period_seconds": 60.0,
            "resumed": 0,
            "outcome": "completed",
            "versions": {"python": "3.11.7", "torch": "2.13.0+cpu"},
        },
        "updates": {
            "proposed": 3,
            "applied": 1,
            "approved": 1,
            "rejected": 1,
            "pending": 1,
            "rolled_back": 0,
            "timeline": [
                _update(0, 2, "approved", 0.003),
                _update(1, 5, "pending", 0.012),
                {**_update(2, 8, "rejected", 0.6), "reasons": [HOSTILE]},
            ],
            "rollbacks": [],
        },
        "safety": {
            "filters": ["profanity", "threat", "pii"],
            "series": [
                {
                    "cycle": c,
                    "generated": 32,
                    "blocked": b,
                    "redacted": r,
                    "escalated": 0,
                    "block_rate": b / 32,
                    "redact_rate": r / 32,
                }
                for c, b, r in ((0, 1, 0), (1, 2, 1), (2, 0, 0))
            ],
            "totals": {"generated": 96, "blocked": 3, "redacted": 1, "escalated": 0},
            "block_rate": 0.0312,
            "redact_rate": 0.0104,
        },
        "fairness": {
            "data_checks": [
                {
                    "cycle": c,
                    "seq": s,
                    "passed": True,
                    "reward_gap": g,
                    "reward_gap_lower_95": 0.0,
                    "max_reward_gap": 0.5,
                    "like_rate_by_group": {"a": 0.4 + g, "b": 0.4},
                }
                for c, s, g in ((0, 2, 0.1), (1, 5, 0.2), (2, 8, 0.05))
            ],
            "output_probes": [
                {
                    "cycle": 0,
                    "seq": 2,
                    "passed": True,
                    "axes": [
                        {
                            "axis": "gender",
                            "metric": "toxicity",
                            "gap": 0.01,
                            "threshold": 0.1,
                            "passed": True,
                        },
                        {
                            "axis": "gender",
                            "metric": "sentiment",
                            "gap": 0.2,
                            "threshold": 0.3,
                            "passed": True,
                        },
                    ],
                },
            ],
            "failed": 0,
        },
        "oversight": {
            "human_review": "when_needed",
            "approvals_required": 1,
            "four_eyes": True,
            "held_for_review": 1,
            "decisions": [
                {
                    "seq": 9,
                    "hash": _hash(9),
                    "time": "2026-11-26T20:15:00Z",
                    "proposal_id": "u1",
                    "cycle": 1,
                    "decision": "approve",
                    "reviewer": "ed25519:" + "f0" * 8,
                    "role": "reviewer",
                    "approvals": 1,
                    "approvals_required": 1,
                },
            ],
            "reviewers": 1,
            "signatures_verified": 1,
            "approved_by_gate": 1,
            "approved_by_people": 0,
        },
        "consent": {
            "grants": 6,
            "revocations": 0,
            "erasures": 0,
            "erased_feedback_rows": 0,
            "retention_purges": 0,
            "ratings_refused_without_consent": 2,
        },
        "reproducibility": {
            "updates": 3,
            "with_replay_inputs": 3,
            "not_replayable_after_erasure": [],
            "checkpoints": 3,
            "replay": None,
        },
        "controls": [
            {
                "id": "C1",
                "title": "Record-keeping",
                "requirement": "Updates are logged.",
                "rule": "all",
                "status": status("met"),
                "evidence": [
                    {
                        "what": "proposals",
                        "source": "entry update_proposed",
                        "found": True,
                        "count": 3,
                        "refs": [_ref(2), _ref(5), _ref(8)],
                    },
                    {
                        "what": "log verifies",
                        "source": "fact log_verified",
                        "found": ok,
                        "count": int(ok),
                        "refs": [],
                    },
                ],
            },
            {
                "id": "C2",
                "title": f"Oversight {HOSTILE}",
                "requirement": "People decide.",
                "rule": "all",
                "status": status("partly met"),
                "evidence": [
                    {
                        "what": "signed decisions",
                        "source": "entry review_decision",
                        "found": True,
                        "count": 1,
                        "refs": [_ref(9, "review_decision")],
                    },
                    {
                        "what": "proposals again",
                        "source": "entry update_proposed",
                        "found": True,
                        "count": 7,
                        "refs": [_ref(2), _ref(5)],
                    },
                    {
                        "what": "rollbacks",
                        "source": "entry rollback",
                        "found": False,
                        "count": 0,
                        "refs": [],
                    },
                ],
            },
            {
                "id": "C3",
                "title": "Consent",
                "requirement": "Consent is checked.",
                "rule": "any",
                "status": status("gap"),
                "evidence": [
                    {
                        "what": "erasures",
                        "source": "entry erasure",
                        "found": False,
                        "count": 0,
                        "refs": [],
                    },
                ],
            },
        ],
        "control_summary": (
            {"met": 1, "partly met": 1, "gap": 1, "unverified": 0}
            if ok
            else {"met": 0, "partly met": 0, "gap": 0, "unverified": 3}
        ),
    }


def integration_report() -> dict[str, Any]:
    """A plain-PyTorch loop's report: KL per update, no screening, groups or probes."""
    report = make_report()
    report["safety"].update(series=[], totals={}, block_rate=None, redact_rate=None)
    report["fairness"] = {"data_checks": [], "output_probes": [], "failed": 0}
    return report


class Page(HTMLParser):
    """What the tests look at: body text in order, ids, links, images and control rows."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.in_body = False
        self.in_title = False
        self.title = ""
        self.texts: list[str] = []
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.charts: list[dict[str, str | None]] = []
        self.tags: list[str] = []
        self.control_rows: list[str] = []  # the class of each control row
        self.row_texts: list[list[str]] = []
        self._in_control_row = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "body":
            self.in_body = True
        if tag == "title":
            self.in_title = True
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if a.get("href") is not None:
            self.hrefs.append(str(a["href"]))
        if a.get("src") is not None:
            self.srcs.append(str(a["src"]))
        if tag == "img" and "chart" in (a.get("class") or "").split():
            self.charts.append(a)
        if tag == "tr" and "control" in (a.get("class") or "").split():
            self.control_rows.append(str(a.get("class")))
            self.row_texts.append([])
            self._in_control_row = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag == "tr":
            self._in_control_row = False

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
        if self.in_body and data.strip():
            self.texts.append(data.strip())
        if self._in_control_row:
            self.row_texts[-1].append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


@pytest.fixture(scope="module")
def html() -> str:
    return render_html(make_report())


def test_the_page_is_self_contained(html: str) -> None:
    lowered = html.lower()
    assert "http://" not in lowered and "https://" not in lowered
    assert "<script" not in lowered and "<link" not in lowered and "@import" not in lowered
    assert "url(" not in lowered  # no CSS fetches either
    page = parse(html)
    for ref in page.hrefs:
        assert ref.startswith("#"), ref
    for src in page.srcs:
        assert src.startswith("data:image/png;base64,"), src[:40]
    assert "iframe" not in page.tags and "object" not in page.tags


def test_headline_is_the_title_and_the_first_text_of_the_body(html: str) -> None:
    report = make_report()
    page = parse(html)
    assert page.texts[0] == report["headline"]
    assert page.title == report["headline"]
    assert 'class="banner verified"' in html


def test_charts_are_embedded_pngs_of_the_intended_size(html: str) -> None:
    page = parse(html)
    assert len(page.charts) == 4
    for img in page.charts:
        src = str(img["src"])
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(PNG_SIGNATURE)
        width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
        assert (width, height) == (640, 300)
        assert len(png) < 60_000
        assert img.get("alt")
    assert html.count('<figure class="chart">') == html.count("<figcaption>") == 4


def test_charts_are_deterministic() -> None:
    first, second = build_charts(make_report()), build_charts(make_report())
    assert {k: c.png for k, c in first.items()} == {k: c.png for k, c in second.items()}


def test_controls_table_has_one_row_per_control_with_status_text(html: str) -> None:
    report = make_report()
    page = parse(html)
    assert 'id="controls"' in html
    assert len(page.control_rows) == len(report["controls"])
    labels = {"met": "Met", "partly met": "Partly met", "gap": "Gap"}
    for control, cls, texts in zip(
        report["controls"], page.control_rows, page.row_texts, strict=True
    ):
        status = control["status"]
        assert f"status-{status.replace(' ', '-')}" in cls.split()
        assert labels[status] in texts  # the status is written, not only coloured
        assert control["id"] in texts


def test_evidence_links_resolve_and_each_entry_is_listed_once(html: str) -> None:
    page = parse(html)
    ids = set(page.ids)
    assert len(ids) == len(page.ids), "duplicate ids"
    for ref in page.hrefs:
        assert ref[1:] in ids, ref
    entry_ids = sorted(i for i in page.ids if i.startswith("entry-"))
    assert entry_ids == ["entry-2", "entry-5", "entry-8", "entry-9"]
    assert {"#entry-2", "#entry-9"} <= set(page.hrefs)
    assert _hash(9) in html  # the full hash, in the appendix
    assert "and 5 more" in html  # 7 entries matched, 2 referenced


def test_report_strings_are_escaped(html: str) -> None:
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in html
    report = make_report()
    report["report"]["run_dir"] = '/tmp/"><img src=x>'
    report["headline"] = "Audit log verified: <b>bold</b>"
    escaped = render_html(report)
    assert "<img src=x>" not in escaped and "<b>bold</b>" not in escaped
    page = parse(escaped)
    assert page.texts[0] == "Audit log verified: <b>bold</b>"  # shown as text


def test_failed_verification_says_so_first_and_every_control_is_unverified() -> None:
    report = make_report(ok=False)
    html = render_html(report)
    page = parse(html)
    assert page.texts[0].startswith("AUDIT LOG FAILED VERIFICATION")
    assert page.title.startswith("AUDIT LOG FAILED VERIFICATION")
    assert 'class="banner failed"' in html and "banner verified" not in html
    assert len(page.control_rows) == 3
    for cls, texts in zip(page.control_rows, page.row_texts, strict=True):
        assert "status-unverified" in cls.split()
        assert "Unverified" in texts


def test_sections_follow_the_markdown_report(html: str) -> None:
    page = parse(html)
    for section in (
        "run",
        "integrity",
        "updates",
        "safety",
        "fairness",
        "oversight",
        "consent",
        "reproducibility",
        "controls-section",
        "evidence",
    ):
        assert section in page.ids
        assert f"#{section}" in page.hrefs  # the table of contents
    text = " ".join(page.texts)
    for phrase in ("held for review", "rejected", "ed25519:" + "f0" * 8, "auto_small_step"):
        assert phrase in text
    assert "@media print" in html and "break-inside: avoid" in html
    assert "display: table-header-group" in html


def test_a_run_without_data_gets_notes_not_empty_charts() -> None:
    report = integration_report()
    html = render_html(report)
    page = parse(html)
    assert len(page.charts) == 1  # KL per update only
    assert html.count("No data recorded") == 3
    assert "No screening recorded" in html


def test_an_empty_run_renders() -> None:
    report = integration_report()
    report["updates"].update(proposed=0, applied=0, approved=0, rejected=0, pending=0)
    report["updates"]["timeline"] = []
    report["oversight"]["decisions"] = []
    for control in report["controls"]:
        for item in control["evidence"]:
            item.update(found=False, count=0, refs=[])
    html = render_html(report)
    page = parse(html)
    assert page.charts == []
    assert "No log entries referenced" in html
    assert not [i for i in page.ids if i.startswith("entry-")]


def test_a_loops_own_screen_counts_draw_the_safety_chart() -> None:
    report = integration_report()
    report["safety"]["series"] = [
        {
            "cycle": c,
            "screened": {"completions": 64, "blocked": b, "redacted": 1},
            "block_rate": b / 64,
            "redact_rate": 1 / 64,
        }
        for c, b in ((0, 2), (1, 1))
    ]
    report["safety"]["totals"] = {"completions": 128, "blocked": 3, "redacted": 2}
    charts = build_charts(report)
    assert charts["safety"].png is not None
    html = render_html(report)
    assert "loop&#x27;s own screen counted" in html or "loop's own screen counted" in html


def test_rollbacks_and_the_input_are_left_alone() -> None:
    report = make_report()
    report["updates"]["timeline"][1].update(applied=True, decision="approved")
    report["updates"]["rollbacks"] = [
        {"seq": 30, "hash": _hash(30), "time": None, "to_update": 0, "reason": "bad <update>"}
    ]
    before = copy.deepcopy(report)
    html = render_html(report)
    assert report == before
    assert "rolled back" in html and "bad &lt;update&gt;" in html


def test_replay_results_are_listed(html: str) -> None:
    assert "Replay not run" in html
    report = make_report()
    report["reproducibility"]["replay"] = [
        {"cycle": 0, "status": "reproduced", "detail": "weights match"},
        {"cycle": 1, "status": "differs", "detail": "hash <mismatch>"},
    ]
    replayed = render_html(report)
    assert "Replay: 1 differs, 1 reproduced." in replayed
    assert "hash &lt;mismatch&gt;" in replayed and "Replay not run" not in replayed

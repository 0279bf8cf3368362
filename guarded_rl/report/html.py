"""The report as one self-contained HTML page: inline CSS, charts as data URIs, no scripts and
no network requests. The verification headline is the first text of the page; the sections
follow the Markdown report, and every control's evidence links to an appendix of log entries."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from guarded_rl.report.charts import Chart, build_charts

STATUSES = ("met", "partly met", "gap", "unverified")
STATUS_LABEL = {"met": "Met", "partly met": "Partly met", "gap": "Gap", "unverified": "Unverified"}

#: The badge colour of a reviewer's signed decision.
REVIEW_CLASS = {"approve": "d-approved", "reject": "d-rejected"}

SECTIONS = (
    ("run", "Run summary"),
    ("integrity", "Integrity"),
    ("updates", "Updates timeline"),
    ("safety", "Safety"),
    ("fairness", "Fairness"),
    ("oversight", "Human oversight"),
    ("consent", "Consent"),
    ("reproducibility", "Reproducibility"),
    ("controls-section", "Controls"),
    ("evidence", "Evidence entries"),
)

CSS = """
:root { --ink: #1f2328; --muted: #57606a; --line: #d0d7de; --zebra: #f6f8fa;
  --ok: #1a7f37; --ok-bg: #dafbe1; --bad: #cf222e; --bad-bg: #ffebe9;
  --warn: #9a6700; --warn-bg: #fff8c5; --grey: #57606a; --grey-bg: #eaeef2; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.5; font-size: 15px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans",
    "Liberation Sans", Arial, sans-serif; }
main { max-width: 60rem; margin: 0 auto; padding: 1.25rem 1.5rem 3rem; }
h1 { font-size: 1.7rem; line-height: 1.25; margin: 1.25rem 0 0.5rem; }
h2 { font-size: 1.3rem; margin: 2.25rem 0 0.75rem; padding-bottom: 0.3rem;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.5rem 0 0.5rem; }
p { margin: 0.5rem 0; }
a { color: #0550ae; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono",
  "DejaVu Sans Mono", monospace; font-size: 0.86em; }
.hash { overflow-wrap: anywhere; word-break: break-all; }
.muted { color: var(--muted); }
.banner { border: 3px solid; border-radius: 6px; padding: 0.75rem 1rem; font-weight: 600;
  font-size: 1.05rem; margin: 0 0 0.5rem; overflow-wrap: anywhere; }
.banner.verified { border-color: var(--ok); background: var(--ok-bg); color: #0f5323; }
.banner.failed { border-color: var(--bad); background: var(--bad-bg); color: #82071e;
  font-size: 1.15rem; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 0.15rem 1rem;
  margin: 0.75rem 0; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; overflow-wrap: anywhere; }
.note { border-left: 4px solid var(--line); margin: 0.75rem 0; padding: 0.25rem 0.9rem;
  color: var(--muted); }
.summary { display: flex; flex-wrap: wrap; gap: 0.5rem; margin: 1rem 0; padding: 0;
  list-style: none; }
.summary li { border: 1px solid; border-radius: 6px; padding: 0.35rem 0.8rem; }
.summary li:first-child { border-color: var(--line); color: var(--muted);
  align-self: center; }
.summary strong { font-size: 1.2rem; margin-right: 0.3rem; }
.toc { border: 1px solid var(--line); border-radius: 6px; padding: 0.5rem 1rem;
  margin: 1rem 0; }
.toc h2 { font-size: 1rem; margin: 0.25rem 0; border: 0; padding: 0; }
.toc ol { margin: 0.25rem 0; padding-left: 1.5rem; columns: 2; column-gap: 2rem; }
table { border-collapse: collapse; width: 100%; margin: 0.75rem 0; font-size: 0.9rem; }
th, td { border: 1px solid var(--line); padding: 0.3rem 0.5rem; text-align: left;
  vertical-align: top; }
thead th { background: var(--grey-bg); }
tbody tr:nth-child(even) { background: var(--zebra); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
th.wide { width: 40%; }
table.compact { width: auto; min-width: 60%; }
table.timeline { font-size: 0.85rem; }
code.rule { font-size: 0.8rem; color: var(--muted); overflow-wrap: anywhere; }
table.kv th { width: 15.5rem; font-weight: 600; background: var(--zebra); }
.status { display: inline-block; border: 1px solid; border-radius: 4px; padding: 0 0.4rem;
  font-weight: 600; font-size: 0.85rem; white-space: nowrap; }
.s-met, .d-approved { color: var(--ok); background: var(--ok-bg); }
.s-partly-met, .d-pending, .d-undecided { color: var(--warn); background: var(--warn-bg); }
.s-gap, .d-rejected, .d-rolled-back, .s-missing { color: var(--bad); background: var(--bad-bg); }
.d-superseded, .d-expired { color: var(--muted); background: var(--grey-bg); }
.s-unverified { color: var(--grey); background: var(--grey-bg); }
.s-found { color: var(--ok); background: var(--ok-bg); }
tr.control.status-gap td:first-child { box-shadow: inset 4px 0 0 var(--bad); }
tr.control.status-partly-met td:first-child { box-shadow: inset 4px 0 0 var(--warn); }
tr.control.status-met td:first-child { box-shadow: inset 4px 0 0 var(--ok); }
tr.control.status-unverified td:first-child { box-shadow: inset 4px 0 0 var(--grey); }
#controls { table-layout: fixed; }
col.w-ctl { width: 19%; } col.w-st { width: 10.5%; } col.w-req { width: 25%; }
col.w-ev { width: 45.5%; }
#controls .cid { display: block; font-weight: 700; }
#controls td { overflow-wrap: break-word; }
ul.evidence { margin: 0; padding: 0; list-style: none; }
ul.evidence li { margin: 0 0 0.4rem; }
ul.evidence .source { display: block; color: var(--muted); font-size: 0.82rem; }
ul.reasons { margin: 0; padding-left: 1rem; }
figure.chart { margin: 1rem 0; break-inside: avoid; page-break-inside: avoid; }
img.chart { display: block; max-width: 100%; height: auto; border: 1px solid var(--line);
  border-radius: 4px; }
figcaption { color: var(--muted); font-size: 0.86rem; margin-top: 0.3rem; }
.nodata { border: 1px dashed var(--line); border-radius: 4px; padding: 0.6rem 0.9rem;
  color: var(--muted); }
tr:target { outline: 2px solid #0969da; }
footer { margin-top: 3rem; color: var(--muted); font-size: 0.85rem;
  border-top: 1px solid var(--line); padding-top: 0.5rem; }
@media (max-width: 40rem) { main { padding: 0.75rem; } .toc ol { columns: 1; }
  table.kv th { width: auto; } }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  .banner, .status, thead th, tbody tr:nth-child(even), table.kv th { background: none; }
  .banner { border-width: 2pt; }
  .toc { display: none; }
  a { color: inherit; text-decoration: none; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  tr, figure, .banner, .summary { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  table, table.timeline { font-size: 8.5pt; }
  img.chart { max-width: 100%; border: 0; }
  tr:target { outline: none; }
}
"""

# A page that could not fetch anything even if a string slipped through: images from data URIs
# only, inline styles only, no scripts.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'"


def _e(value: Any) -> str:
    """Escaped text of a value; None as an em dash."""
    return "—" if value is None else escape(str(value))


def _num(value: Any, digits: int = 4) -> str:
    """A number for a table cell: floats to `digits` significant digits."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return escape(f"{value:.{digits}g}")
    return escape(str(value))


def _pct(value: Any) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:.1%}"


def _yes_no(value: Any) -> str:
    if value is None:
        return '<span class="muted">—</span>'
    return _badge("passed" if value else "failed", "s-met" if value else "s-gap")


def _badge(text: str, cls: str) -> str:
    return f'<span class="status {cls}">{escape(text)}</span>'


def _slug(text: str) -> str:
    return "-".join(str(text).lower().split())


def _table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    numeric: Iterable[int] = (),
    wide: Iterable[int] = (),
    class_: str = "",
) -> str:
    """A table; cells are HTML already (escape first); `numeric` columns align right, `wide`
    columns get the spare width."""
    numeric, wide = set(numeric), set(wide)

    def cls(i: int) -> str:
        names = ["num"] * (i in numeric) + ["wide"] * (i in wide)
        return f' class="{" ".join(names)}"' if names else ""

    head = "".join(f'<th scope="col"{cls(i)}>{escape(h)}</th>' for i, h in enumerate(header))
    body = "\n".join(
        "<tr>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    table_class = f' class="{escape(class_)}"' if class_ else ""
    return f"<table{table_class}><thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>"


def _kv(rows: Sequence[tuple[str, str]]) -> str:
    body = "\n".join(f'<tr><th scope="row">{escape(k)}</th><td>{v}</td></tr>' for k, v in rows)
    return f'<table class="kv"><tbody>\n{body}\n</tbody></table>'


def _figure(chart: Chart) -> str:
    if chart.png is None:
        return f'<p class="nodata"><strong>{escape(chart.title)}</strong>: {escape(chart.note)}</p>'
    data = base64.b64encode(chart.png).decode("ascii")
    return (
        f'<figure class="chart"><img class="chart" alt="{escape(chart.alt)}" width="640" '
        f'height="300" src="data:image/png;base64,{data}">'
        f"<figcaption><strong>{escape(chart.title)}.</strong> {escape(chart.caption)}"
        "</figcaption></figure>"
    )


def _section(key: str, body: str) -> str:
    title = dict(SECTIONS)[key]
    return f'<section id="{key}">\n<h2>{escape(title)}</h2>\n{body}\n</section>'


def _head(report: dict[str, Any]) -> str:
    r = report["report"]
    ok = report["verification"]["ok"]
    banner = (
        f'<div class="banner {"verified" if ok else "failed"}" role="{"status" if ok else "alert"}"'
        f">{escape(report['headline'])}</div>"
    )
    meta = [
        (
            "Framework",
            f"{_e(r['framework_title'])} (<code>{_e(r['framework'])}</code>, "
            f"{_e(r['framework_version'])})",
        ),
        ("Run", f'<code class="hash">{_e(r["run_dir"])}</code>'),
        ("Generated", f"{_e(r['generated_at'])} by guarded-rl {_e(r['guarded_rl_version'])}"),
    ]
    meta_html = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in meta)
    note = f'<blockquote class="note">{_e(r["framework_note"])}</blockquote>' * bool(
        r["framework_note"]
    )
    summary = report["control_summary"]
    chips = "".join(
        f'<li class="s-{_slug(s)}"><strong>{int(summary.get(s, 0))}</strong> '
        f"{escape(STATUS_LABEL[s].lower())}</li>"
        for s in STATUSES
        if s != "unverified" or summary.get(s)
    )
    total = sum(int(summary.get(s, 0)) for s in STATUSES)
    toc = "".join(f'<li><a href="#{k}">{escape(t)}</a></li>' for k, t in SECTIONS)
    return (
        f"{banner}\n<header>\n<h1>{_e(r['framework_title'])}: compliance report</h1>\n"
        f'<dl class="meta">{meta_html}</dl>\n{note}\n'
        f'<ul class="summary" aria-label="Controls by status"><li>{total} controls</li>'
        f"{chips}</ul>\n</header>\n"
        f'<nav class="toc" aria-label="Contents"><h2>Contents</h2><ol>{toc}</ol></nav>'
    )


def _run(report: dict[str, Any]) -> str:
    run = report["run"]
    versions = ", ".join(f"{k} {v}" for k, v in sorted((run.get("versions") or {}).items()))
    rows = [
        ("Run id", f"<code>{_e(run['run_id'])}</code>"),
        ("Integration", _e(run["integration"])),
        ("Model", _e(run["model"])),
        (
            "Weights at start (SHA-256)",
            f'<code class="hash">{_e(run["model_sha256_at_start"])}</code>',
        ),
        (
            "Policy",
            _e(run["policy_name"])
            + (
                f' (SHA-256 <code class="hash">{_e(run["policy_sha256"])}</code>)'
                if run.get("policy_sha256")
                else ""
            ),
        ),
        ("Seed", _e(run.get("seed"))),
        ("Cycles configured", _e(run.get("cycles_configured"))),
        (
            "Period",
            f"{_e(run['started'])} to {_e(run['last_entry'])} ({_num(run['period_seconds'])} s)",
        ),
        ("Resumed", f"{_e(run.get('resumed', 0))} time(s)"),
        ("Outcome", _e(run["outcome"])),
        ("Code and libraries", _e(versions or None)),
    ]
    return _section("run", _kv(rows))


def _integrity(report: dict[str, Any]) -> str:
    v = report["verification"]
    if v["ok"]:
        text = (
            f"<p><code>audit verify</code>: <strong>intact</strong>. {_e(v['entries'])} entries; "
            f"the signed head covers {_e(v['signed_entries'])}; "
            f"{_e(v['checkpoints_verified'])} checkpoint references and "
            f"{_e(v['reviewer_signatures_verified'])} reviewer signature(s) verified.</p>"
        )
    else:
        at = f" (at entry #{_e(v['failure_seq'])})" if v.get("failure_seq") is not None else ""
        text = (
            f'<p><code>audit verify</code> <strong class="status s-gap">FAILED</strong>{at}: '
            f"{_e(v['failure'])}</p><p>Every figure below is read from the log as it stands and "
            "cannot be trusted; every control is unverified.</p>"
        )
    rows = [
        ("Entries", _e(v["entries"])),
        ("Signed entries", _e(v["signed_entries"])),
        ("Merkle root", f'<code class="hash">{_e(v["root_hash"])}</code>'),
        ("Checkpoints verified", _e(v["checkpoints_verified"])),
        ("Reviewer signatures verified", _e(v["reviewer_signatures_verified"])),
    ]
    notes = "".join(f"<li>{_e(n)}</li>" for n in v.get("notes") or [])
    return _section("integrity", text + _kv(rows) + (f"<ul>{notes}</ul>" if notes else ""))


def _rolled_back(updates: dict[str, Any]) -> set[int]:
    """Cycles whose applied update a later rollback undid."""
    undone: set[int] = set()
    for rb in updates.get("rollbacks", []):
        target = rb.get("to_update")
        if not isinstance(target, int):
            continue
        undone |= {
            t["cycle"]
            for t in updates["timeline"]
            if t.get("applied")
            and isinstance(t.get("cycle"), int)
            and t["cycle"] > target
            and t.get("seq", 0) < rb.get("seq", 0)
        }
    return undone


def _closed_unreviewed(u: dict[str, Any]) -> str:
    """Proposals the review queue closed without anyone rejecting them (older reports: none)."""
    parts = []
    if u.get("superseded"):
        parts.append(
            f"{_e(u['superseded'])} superseded (made from weights no longer live; nobody "
            "rejected them)"
        )
    if u.get("expired"):
        parts.append(f"{_e(u['expired'])} expired before anyone decided")
    return "".join(f"{part}, " for part in parts)


def _decision(row: dict[str, Any], undone: set[int]) -> str:
    decision = str(row.get("decision") or "undecided")
    label = {"pending": "held for review", "expired": "expired unreviewed"}.get(decision, decision)
    out = _badge(label, f"d-{_slug(decision)}")
    if row.get("applied"):
        out += " · applied"
    if row.get("cycle") in undone:
        out += " " + _badge("rolled back", "d-rolled-back")
    return out


def _updates(report: dict[str, Any], chart: Chart) -> str:
    u = report["updates"]
    undone = _rolled_back(u)
    text = (
        f"<p>{_e(u['proposed'])} proposed, {_e(u['applied'])} applied, {_e(u['approved'])} "
        f"approved, {_e(u['rejected'])} rejected, {_closed_unreviewed(u)}"
        f"{_e(u['pending'])} still held for review "
        f"({_e(u.get('held_for_review', 0))} held at some point), "
        f"{_e(u['rolled_back'])} rollback(s).</p>"
    )
    limits = sorted({str(t["max_step_kl"]) for t in u["timeline"] if t.get("max_step_kl")})
    if limits:
        text += (
            "<p>The gate approves an update by itself only when its probe KL is below "
            f"<code>max_step_kl</code> {_e(' / '.join(limits))} and its other checks pass; "
            "otherwise the update waits for a person or is rejected.</p>"
        )
    if not u["timeline"]:
        return _section("updates", text + '<p class="nodata">No updates proposed.</p>')
    rows = [
        [
            _e(t["cycle"]),
            f'<span title="{_e(t.get("hash"))}">#{_e(t["seq"])}</span>',
            _decision(t, undone)
            + (f'<br><code class="rule">{_e(t["rule"])}</code>' if t.get("rule") else ""),
            _num(t.get("kl_step"), 3),
            _num(t.get("param_change"), 3),
            '<ul class="reasons">' + "".join(f"<li>{_e(r)}</li>" for r in t["reasons"]) + "</ul>"
            if t.get("reasons")
            else "—",
        ]
        for t in u["timeline"]
    ]
    table = _table(
        ["Update", "Entry", "Decision and rule", "Probe KL", "Param. change", "Reasons"],
        rows,
        numeric=(0, 1, 3, 4),
        wide=(5,),
        class_="timeline",
    )
    rollbacks = "".join(
        f"<p>Rolled back to update {_e(rb['to_update'])} (entry #{_e(rb['seq'])}, "
        f"{_e(rb.get('time'))}): {_e(rb.get('reason'))}</p>"
        for rb in u["rollbacks"]
    )
    return _section("updates", text + _figure(chart) + table + rollbacks)


def _safety(report: dict[str, Any], chart: Chart) -> str:
    s = report["safety"]
    totals = s["totals"]
    filters = ", ".join(s.get("filters") or []) or "none"
    if totals.get("generated"):
        text = (
            f"<p>Filters: {_e(filters)}. {_e(totals['generated'])} outputs screened: "
            f"<strong>{_e(totals.get('blocked', 0))} blocked</strong> "
            f"({_pct(s['block_rate'])}), {_e(totals.get('redacted', 0))} redacted "
            f"({_pct(s['redact_rate'])}), {_e(totals.get('escalated', 0))} escalated.</p>"
        )
        rows = [
            [
                _e(r["cycle"]),
                _e(r["generated"]),
                _e(r["blocked"]),
                _e(r["redacted"]),
                _e(r["escalated"]),
                _pct(r["block_rate"]),
                _pct(r["redact_rate"]),
            ]
            for r in s["series"]
            if "generated" in r
        ]
        table = _table(
            [
                "Update",
                "Generated",
                "Blocked",
                "Redacted",
                "Escalated",
                "Block rate",
                "Redact rate",
            ],
            rows,
            numeric=range(7),
            class_="compact",
        )
        return _section("safety", text + _figure(chart) + table)
    if totals:
        counts = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in sorted(totals.items()))
        text = (
            f"<p>Filters: {_e(filters)}. The training loop's own screen counted: {_e(counts)}.</p>"
        )
        return _section("safety", text + _figure(chart))
    text = f"<p>Filters: {_e(filters)}. No screening recorded in this log.</p>"
    return _section("safety", text + _figure(chart))


def _fairness(report: dict[str, Any], like_chart: Chart, gap_chart: Chart) -> str:
    f = report["fairness"]
    text = (
        f"<p>{_e(f['failed'])} fairness check(s) failed.</p>"
        if (f["data_checks"] or f["output_probes"])
        else ""
    )
    parts = [text, _figure(like_chart), _figure(gap_chart), "<h3>Data bias checks</h3>"]
    if f["data_checks"]:
        parts.append(
            _table(
                ["Update", "Reward gap", "Lower 95%", "Limit", "Like-rate by group", "Result"],
                [
                    [
                        _e(d["cycle"]),
                        _num(d["reward_gap"]),
                        _num(d["reward_gap_lower_95"]),
                        _num(d["max_reward_gap"]),
                        ", ".join(
                            f"{_e(g)} {_num(x, 3)}"
                            for g, x in sorted((d.get("like_rate_by_group") or {}).items())
                        ),
                        _yes_no(d["passed"]),
                    ]
                    for d in f["data_checks"]
                ],
                numeric=(0, 1, 2, 3),
            )
        )
    else:
        parts.append('<p class="nodata">No data bias checks recorded.</p>')
    parts.append("<h3>Counterfactual output probes</h3>")
    if f["output_probes"]:
        parts.append("<p>Largest gap per axis and metric.</p>")
        parts.append(
            _table(
                ["Update", "Axis", "Metric", "Gap", "Limit", "Result"],
                [
                    [
                        _e(o["cycle"]),
                        _e(a.get("axis")),
                        _e(a.get("metric")),
                        _num(a.get("gap")),
                        _num(a.get("threshold")),
                        _yes_no(a.get("passed")),
                    ]
                    for o in f["output_probes"]
                    for a in o.get("axes", [])
                ],
                numeric=(0, 3, 4),
                class_="compact",
            )
        )
    else:
        parts.append('<p class="nodata">No counterfactual output probes recorded.</p>')
    return _section("fairness", "\n".join(parts))


def _oversight(report: dict[str, Any]) -> str:
    o = report["oversight"]
    rows = [
        ("Human review", f"<code>{_e(o['human_review'])}</code>"),
        ("Approvals required", _e(o["approvals_required"])),
        ("Four-eyes", "on" if o["four_eyes"] else "off"),
        ("Approved by the gate's thresholds", _e(o["approved_by_gate"])),
        ("Approved by people", _e(o["approved_by_people"])),
        ("Proposals held for review", _e(o["held_for_review"])),
        ("Signed decisions", f"{len(o['decisions'])} by {_e(o['reviewers'])} reviewer(s)"),
        ("Signatures verified", _e(o["signatures_verified"])),
    ]
    parts = [_kv(rows)]
    if o["decisions"]:
        parts.append(
            _table(
                [
                    "Entry",
                    "Time",
                    "Proposal",
                    "Update",
                    "Decision",
                    "Reviewer key",
                    "Role",
                    "Approvals",
                ],
                [
                    [
                        f'<span title="{_e(d.get("hash"))}">#{_e(d["seq"])}</span>',
                        _e(d["time"]),
                        f'<code class="hash">{_e(d["proposal_id"])}</code>',
                        _e(d.get("cycle")),
                        _badge(str(d["decision"] or "—"), REVIEW_CLASS.get(d["decision"], "")),
                        f'<code class="hash">{_e(d["reviewer"])}</code>',
                        _e(d["role"]),
                        f"{_e(d['approvals'])} of {_e(d['approvals_required'])}",
                    ]
                    for d in o["decisions"]
                ],
                numeric=(0,),
            )
        )
        parts.append(
            '<p class="muted">Reviewers appear as public-key fingerprints, never by name.</p>'
        )
    else:
        parts.append('<p class="nodata">No signed review decisions recorded.</p>')
    return _section("oversight", "\n".join(parts))


def _consent(report: dict[str, Any]) -> str:
    c = report["consent"]
    rows = [
        ("Consent grants", _e(c["grants"])),
        ("Revocations", _e(c["revocations"])),
        ("Erasures", f"{_e(c['erasures'])} ({_e(c['erased_feedback_rows'])} feedback rows)"),
        ("Retention purges", _e(c["retention_purges"])),
        ("Ratings refused for lack of training consent", _e(c["ratings_refused_without_consent"])),
    ]
    note = '<p class="muted">Counts only: the log holds pseudonyms, never identities.</p>'
    return _section("consent", _kv(rows) + note)


def _reproducibility(report: dict[str, Any]) -> str:
    rep = report["reproducibility"]
    text = (
        f"<p>{_e(rep['with_replay_inputs'])} of {_e(rep['updates'])} updates carry their replay "
        f"inputs (seed and batch commitment); {_e(rep['checkpoints'])} checkpoints.</p>"
    )
    if rep.get("not_replayable_after_erasure"):
        cycles = ", ".join(str(c) for c in rep["not_replayable_after_erasure"])
        text += f"<p>Not replayable after erasure: updates {_e(cycles)}.</p>"
    if rep.get("replay") is None:
        text += (
            "<p>Replay not run for this report (<code>guarded-rl report --replay</code> "
            "re-executes).</p>"
        )
    else:
        counts: dict[str, int] = {}
        for line in rep["replay"]:
            counts[line["status"]] = counts.get(line["status"], 0) + 1
        text += "<p>Replay: " + _e(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        text += ".</p>" + _table(
            ["Update", "Status", "Detail"],
            [[_e(x["cycle"]), _e(x["status"]), _e(x.get("detail"))] for x in rep["replay"]],
            numeric=(0,),
        )
    return _section("reproducibility", text)


def _evidence_item(item: dict[str, Any]) -> str:
    found = bool(item["found"])
    mark = _badge("found" if found else "missing", "s-found" if found else "s-missing")
    source = str(item["source"])
    if source.startswith("fact"):
        where = "established by <code>audit verify</code>"
    elif item["refs"]:
        links = ", ".join(
            f'<a href="#entry-{int(r["seq"])}">#{int(r["seq"])}</a>' for r in item["refs"]
        )
        more = int(item["count"]) - len(item["refs"])
        where = f"{_e(item['count'])} entr{'y' if item['count'] == 1 else 'ies'}: {links}"
        where += f" and {more} more" if more > 0 else ""
    else:
        where = "no matching entries"
    return (
        f'<li>{mark} {_e(item["what"])}<span class="source"><code>{_e(source)}</code> · '
        f"{where}</span></li>"
    )


def _controls(report: dict[str, Any]) -> str:
    rows = []
    for i, c in enumerate(report["controls"], 1):
        status = str(c["status"])
        evidence = "".join(_evidence_item(item) for item in c["evidence"])
        rule = "any item suffices" if c.get("rule") == "any" else "every item needed"
        rows.append(
            f'<tr class="control status-{_slug(status)}" id="control-{i}">'
            f'<td><span class="cid">{_e(c["id"])}</span> '
            f'<span class="ctitle">{_e(c["title"])}</span></td>'
            f"<td>{_badge(STATUS_LABEL.get(status, status), 's-' + _slug(status))}</td>"
            f"<td>{_e(c['requirement'])}</td>"
            f'<td><ul class="evidence">{evidence}</ul>'
            f'<span class="muted">({escape(rule)})</span></td></tr>'
        )
    head = "".join(
        f'<th scope="col">{h}</th>' for h in ("Control", "Status", "Requirement", "Evidence")
    )
    cols = "".join(f'<col class="w-{name}">' for name in ("ctl", "st", "req", "ev"))
    table = (
        f'<table id="controls"><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead>\n'
        "<tbody>\n" + "\n".join(rows) + "\n</tbody></table>"
    )
    intro = (
        "<p>Each control's status comes from the evidence found in the log; entry numbers link "
        "to the appendix with each entry's full hash.</p>"
    )
    return _section("controls-section", intro + table)


def _evidence(report: dict[str, Any]) -> str:
    entries: dict[int, dict[str, Any]] = {}
    for c in report["controls"]:
        for item in c["evidence"]:
            for ref in item["refs"]:
                entries.setdefault(int(ref["seq"]), ref)
    if not entries:
        return _section("evidence", '<p class="nodata">No log entries referenced.</p>')
    rows = "\n".join(
        f'<tr id="entry-{seq}"><td class="num">#{seq}</td><td><code>{_e(ref.get("type"))}'
        f'</code></td><td><code class="hash">{_e(ref.get("hash"))}</code></td></tr>'
        for seq, ref in sorted(entries.items())
    )
    table = (
        '<table class="entries"><thead><tr><th scope="col" class="num">Entry</th>'
        '<th scope="col">Type</th><th scope="col">Hash (SHA-256)</th></tr></thead>\n'
        f"<tbody>\n{rows}\n</tbody></table>"
    )
    text = (
        f"<p>The {len(entries)} audit log entries the controls cite, each once; "
        "<code>guarded-rl audit show RUN_DIR --json</code> lists every entry in full.</p>"
    )
    return _section("evidence", text + table)


def render_html(report: dict[str, Any]) -> str:
    """The whole report as one HTML document (a string)."""
    charts = build_charts(report)
    r = report["report"]
    body = "\n".join(
        [
            _head(report),
            _run(report),
            _integrity(report),
            _updates(report, charts["kl"]),
            _safety(report, charts["safety"]),
            _fairness(report, charts["like_rate"], charts["fairness"]),
            _oversight(report),
            _consent(report),
            _reproducibility(report),
            _controls(report),
            _evidence(report),
            f"<footer>Generated {_e(r['generated_at'])} by guarded-rl "
            f"{_e(r['guarded_rl_version'])} from the run's audit log. A self-contained file: "
            "no scripts, no external resources.</footer>",
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="guarded-rl {_e(r["guarded_rl_version"])}">\n'
        f"<title>{escape(report['headline'])}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )

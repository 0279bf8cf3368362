"""The report's charts: small PNGs drawn with matplotlib's object API (Agg, no global state).

Each chart is built from the report dict alone. A chart with nothing to draw has no image,
only a note saying so: the report never shows an empty plot.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

WIDTH_IN, HEIGHT_IN, DPI = 6.4, 3.0, 100  # 640 x 300 px
#: Plot area within the figure; the legend goes in the right-hand 30%.
MARGINS = {"left": 0.105, "right": 0.68, "bottom": 0.16, "top": 0.9}
#: Okabe-Ito colours (distinguishable with colour-blindness); markers and dashes differ too.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: Dash patterns of threshold lines: two limits with the same value stay distinguishable.
DASHES = ((5, 3), (2, 2), (8, 3, 2, 3))


@dataclass(frozen=True)
class Chart:
    """One chart: a PNG (or None when there was nothing to draw) and the words around it."""

    key: str
    title: str
    alt: str
    caption: str
    png: bytes | None
    note: str = ""  # why there is no image


def _figure() -> tuple[Figure, Any]:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    ax = fig.add_subplot()
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _png(fig: Figure, ax: Any) -> bytes:
    """The figure as PNG bytes; the legend sits outside the plot on the right."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            frameon=False,
            borderaxespad=0.0,
        )
    ax.title.set_fontsize(11)
    ax.xaxis.label.set_fontsize(9)
    ax.yaxis.label.set_fontsize(9)
    ax.tick_params(labelsize=8)
    fig.subplots_adjust(**MARGINS)  # fixed: every chart lines up, and no layout pass to pay
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    width, height = canvas.get_width_height()
    image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    # a palette of 64 colours keeps the antialiased lines and text, at a third of the size
    small = image.convert("RGB").quantize(colors=64, dither=Image.Dither.NONE)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)  # no timestamp or software chunk: deterministic
    return out.getvalue()


def _integer_updates(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("update (cycle)")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _points(rows: Iterable[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(update, value) pairs; a missing value is NaN, so the line breaks there."""
    xs, ys = [], []
    for row in rows:
        x, y = _num(row.get("cycle")), _num(row.get(key))
        if x is not None:
            xs.append(x)
            ys.append(math.nan if y is None else y)
    return xs, ys


def _finite(values: Iterable[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def _threshold(ax: Any, value: float, label: str, colour: str, dashes: int = 0) -> None:
    pattern = DASHES[dashes % len(DASHES)]
    ax.axhline(value, color=colour, label=label, linewidth=1.2, linestyle=(0, pattern))


def _span(ax: Any, report: dict[str, Any]) -> None:
    """Every chart spans the same updates: all proposed ones."""
    cycles = [c for t in report["updates"]["timeline"] if (c := _num(t.get("cycle"))) is not None]
    if len(cycles) > 1:
        ax.set_xlim(min(cycles) - 0.5, max(cycles) + 0.5)


def _no_data(key: str, title: str, why: str) -> Chart:
    return Chart(key, title, "", "", None, f"No data recorded: {why}.")


def like_rate_chart(report: dict[str, Any]) -> Chart:
    """Like-rate of each group per update; for a run without groups, the mean reward."""
    checks = report["fairness"]["data_checks"]
    groups = sorted({str(g) for d in checks for g in d.get("like_rate_by_group") or {}})
    title = "Like-rate by group per update"
    if groups:
        fig, ax = _figure()
        for i, group in enumerate(groups):
            rows = [
                {"cycle": d.get("cycle"), "v": (d.get("like_rate_by_group") or {}).get(group)}
                for d in checks
            ]
            xs, ys = _points(rows, "v")
            ax.plot(
                xs,
                ys,
                color=COLOURS[i % len(COLOURS)],
                marker=MARKERS[i % len(MARKERS)],
                markersize=4,
                linewidth=1.4,
                label=f"group {group}",
            )
        ax.set_title(title)
        ax.set_ylabel("like-rate")
        ax.set_ylim(-0.02, 1.02)
        _integer_updates(ax)
        _span(ax, report)
        return Chart(
            "like_rate",
            title,
            f"Line chart: like-rate of {len(groups)} groups over {len(checks)} updates.",
            "Share of rated outputs liked, by group, in each update's training batch (from the "
            "data bias check); a break in a line is an update without that group.",
            _png(fig, ax),
        )
    timeline = report["updates"]["timeline"]
    key = next((k for k in REWARD_KEYS if any(_num(t.get(k)) is not None for t in timeline)), "")
    if key:
        title = "Mean reward per update"
        xs, ys = _points(timeline, key)
        fig, ax = _figure()
        ax.plot(xs, ys, color=COLOURS[0], marker="o", markersize=4, label="mean reward")
        ax.set_title(title)
        ax.set_ylabel("mean reward")
        _integer_updates(ax)
        _span(ax, report)
        return Chart(
            "like_rate",
            title,
            f"Line chart: mean reward over {len(_finite(ys))} updates.",
            "Mean reward of each update's batch (the run records no groups).",
            _png(fig, ax),
        )
    return _no_data(
        "like_rate", title, "no like-rates by group (no data bias checks) and no rewards per update"
    )


def safety_chart(report: dict[str, Any]) -> Chart:
    """Block and redact rates per update."""
    # rates per update, from the run's counts or a loop's own screen (build.py computes them)
    rows = [row for row in report["safety"]["series"] if "block_rate" in row]
    title = "Block and redact rate per update"
    xs, ys = _points(rows, "block_rate")
    xr, yr = _points(rows, "redact_rate")
    if not _finite([*ys, *yr]):
        return _no_data("safety", title, "no screening counts per update")
    fig, ax = _figure()
    ax.plot(xs, ys, color=COLOURS[5], marker="o", markersize=4, label="block rate")
    ax.plot(xr, yr, color=COLOURS[0], marker="s", markersize=4, linestyle=":", label="redact rate")
    top = max(_finite([*ys, *yr]))
    ax.set_ylim(0, max(0.05, top * 1.15))
    ax.yaxis.set_major_formatter(_percent())
    ax.set_title(title)
    ax.set_ylabel("share of outputs")
    _integer_updates(ax)
    _span(ax, report)
    return Chart(
        "safety",
        title,
        f"Line chart: block rate and redact rate over {len(rows)} updates, highest {top:.1%}.",
        "Share of generated outputs the safety filters blocked or redacted before anyone saw them.",
        _png(fig, ax),
    )


def _percent() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)


def _largest(axes: list[dict[str, Any]], metric: str) -> tuple[float, float | None]:
    """The largest gap of a metric over a probe's axes (NaN if none), and that axis' limit."""
    found = [
        (gap, _num(a.get("threshold")))
        for a in axes
        if a.get("metric") == metric and (gap := _num(a.get("gap"))) is not None
    ]
    return max(found, key=lambda pair: pair[0]) if found else (math.nan, None)


def fairness_chart(report: dict[str, Any]) -> Chart:
    """The data check's reward gap and the probes' largest gaps, against their limits."""
    fair = report["fairness"]
    title = "Fairness gaps per update against their limits"
    series: list[tuple[str, list[float], list[float], set[float]]] = []
    xs, ys = _points(fair["data_checks"], "reward_gap")
    limits = {v for d in fair["data_checks"] if (v := _num(d.get("max_reward_gap"))) is not None}
    series.append(("reward", xs, ys, limits))
    probes = [o for o in fair["output_probes"] if _num(o.get("cycle")) is not None]
    metrics = sorted({str(a.get("metric")) for o in probes for a in o.get("axes", [])})
    for metric in metrics:
        largest = [_largest(o.get("axes", []), metric) for o in probes]
        limits = {limit for _, limit in largest if limit is not None}
        series.append(
            (metric, [float(o["cycle"]) for o in probes], [g for g, _ in largest], limits)
        )
    drawn = sum(len(_finite(ys)) for _, _, ys, _ in series)
    if not drawn:
        return _no_data("fairness", title, "no data bias checks or output probes with a gap")
    fig, ax = _figure()
    for i, (name, xs, ys, _) in enumerate(series):
        if not _finite(ys):
            continue
        probe = name != "reward"
        ax.plot(
            xs,
            ys,
            color=COLOURS[i % len(COLOURS)],
            marker=MARKERS[i % len(MARKERS)],
            markersize=7 if probe else 4,
            linestyle=":" if probe else "-",
            label=f"{name} gap, probe" if probe else "reward gap, data",
        )
    for i, (name, _, ys, limits) in enumerate(series):
        for value in sorted(limits) if _finite(ys) else ():
            _threshold(ax, value, f"{name} limit {value:g}", COLOURS[i % len(COLOURS)], i)
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.set_ylabel("gap between groups")
    _integer_updates(ax)
    _span(ax, report)
    return Chart(
        "fairness",
        title,
        f"Line chart: {drawn} fairness gap measurements with dashed limit lines.",
        "The reward gap between groups in each training batch (data check) and, on the updates "
        "the counterfactual output probes ran, the largest gap of each metric over the probe "
        "axes; dashed lines are the policy's limits.",
        _png(fig, ax),
    )


def kl_chart(report: dict[str, Any]) -> Chart:
    """Probe KL of each proposed update, the auto-approval limit, and what was decided."""
    timeline = report["updates"]["timeline"]
    title = "Probe KL per proposed update"
    xs, ys = _points(timeline, "kl_step")
    if not _finite(ys):
        return _no_data("kl", title, "no probe KL measurements")
    fig, ax = _figure()
    ax.plot(xs, ys, color=COLOURS[0], linewidth=1.2, label="probe KL")
    for decision, (marker, colour, label) in DECISION_STYLE.items():
        px, py = _points((t for t in timeline if t.get("decision") == decision), "kl_step")
        if _finite(py):
            ax.plot(
                px,
                py,
                linestyle="none",
                marker=marker,
                color=colour,
                label=label,
                markersize=5 if decision == "approved" else 8,
            )
    limits = sorted({v for t in timeline if (v := _num(t.get("max_step_kl"))) is not None})
    for value in limits:
        _threshold(ax, value, f"limit max_step_kl {value:g}", COLOURS[5])
    ax.set_ylim(0, max([*_finite(ys), *limits]) * 1.15 or 1.0)
    ax.set_title(title)
    ax.set_ylabel("KL divergence")
    _integer_updates(ax)
    _span(ax, report)
    return Chart(
        "kl",
        title,
        f"Line chart: probe KL of {len(_finite(ys))} updates against the max_step_kl limit; "
        "markers show approved, held, rejected, superseded and expired updates.",
        "KL divergence between the live model and each candidate on the probe prompts; at or "
        "above the dashed limit the gate does not approve an update by itself.",
        _png(fig, ax),
    )


#: Marker, colour and legend label of each gate decision in the KL chart.
DECISION_STYLE = {
    "approved": ("o", COLOURS[2], "approved"),
    "pending": ("D", COLOURS[1], "held for review"),
    "rejected": ("X", COLOURS[5], "rejected"),
    "superseded": ("s", "#999999", "superseded (not rejected)"),
    "expired": ("P", "#555555", "expired unreviewed"),
    "undecided": ("v", "#777777", "undecided"),
}
#: Timeline keys a mean reward per update may come under (none in today's report).
REWARD_KEYS = ("reward_mean", "mean_reward")

CHARTS: tuple[Callable[[dict[str, Any]], Chart], ...] = (
    like_rate_chart,
    safety_chart,
    fairness_chart,
    kl_chart,
)


def build_charts(report: dict[str, Any]) -> dict[str, Chart]:
    """Every chart of the report, by key."""
    return {chart.key: chart for chart in (make(report) for make in CHARTS)}

"""`guarded-rl bias ...`: counterfactual bias probes on what a model writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    help="Bias probes: swap identity terms in fixed prompts and compare what the model writes.",
    no_args_is_help=True,
)


@app.callback()
def bias() -> None:
    """Bias probes: swap identity terms in fixed prompts and compare what the model writes."""


@app.command(
    "probe",
    help="Sample completions of every filled probe prompt and report, per axis, the toxicity "
    "and sentiment of each group's completions: the worst and best group and the gap between "
    "them (worst minus best, larger = more unequal) with its standard error.",
)
def probe(
    model: str | None = typer.Option(
        None, "--model", help="A save_pretrained directory or hub id (default: the demo model)."
    ),
    suite: Path | None = typer.Option(  # noqa: B008
        None, "--suite", help="Probe suite TOML (default: the shipped suite)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling (same seed, same samples)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Probe a model for output bias over the suite's axes."""
    from guarded_rl.fairness.probes import default_suite, load_suite, probe_model
    from guarded_rl.learn.causal_lm import load_causal_lm

    probe_suite = load_suite(suite) if suite is not None else default_suite()
    lm, tokenizer = load_causal_lm(model)
    report = probe_model(lm, tokenizer, probe_suite, seed=seed)
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        return
    out = Console(soft_wrap=True, highlight=False, emoji=False)
    table = Table(title=f"output bias probes: {escape(probe_suite.name)}")
    for column in ("axis", "metric", "worst", "best", "gap ± se", "n/group"):
        table.add_column(column, justify="right" if column in ("gap ± se", "n/group") else "left")
    for axis, metrics in report.axes.items():
        for metric, gap in metrics.items():
            table.add_row(
                escape(axis),
                metric,
                f"{escape(gap.worst)} ({gap.by_group[gap.worst]:.3f})",
                f"{escape(gap.best)} ({gap.by_group[gap.best]:.3f})",
                f"{gap.gap:.3f} ± {gap.se:.3f}",
                str(gap.n_per_group),
            )
    out.print(table)
    out.print(
        f"{report.prompts} prompts, {report.samples} samples, seed {seed}, {report.seconds:.1f} s"
    )

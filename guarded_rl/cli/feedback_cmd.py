"""`guarded-rl feedback ...`: bring people's feedback into a run, under their consent."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    help="Import people's feedback into a run's consent-checked feedback store, and list the "
    "items it may rate.",
    no_args_is_help=True,
)


@app.callback()
def feedback() -> None:
    """Import people's feedback into a run's consent-checked feedback store."""


@app.command(
    "import",
    help="Import ratings from a JSONL file: all lines checked, then stored in one transaction."
    "\n\nEach line needs a finite reward, a new id, an item this run showed and a person with "
    "a current training consent. The audit log records the file's hash and counts, no personal "
    "data.",
)
def import_(
    run_dir: Path = typer.Argument(..., help="The run directory."),  # noqa: B008
    file: Path = typer.Argument(  # noqa: B008
        ...,
        help="JSONL, one object a line: id, user_id, item_id, reward (-1..1), purposes "
        "(must include training), and optional comment, group, recorded_at (unix seconds).",
    ),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        help="Store the valid lines and list the refused ones (default: any bad line stops "
        "the import and nothing is stored).",
    ),
    key_file: Path | None = typer.Option(  # noqa: B008
        None, "--key-file", help="The run's signing key (default: as recorded in run.toml)."
    ),
) -> None:
    """Import ratings from a JSONL file: all lines checked, then stored in one transaction."""
    from guarded_rl.commands.feedback_import import import_into_run

    report = import_into_run(run_dir, file, skip_invalid=skip_invalid, key_file=key_file)
    err = Console(stderr=True, soft_wrap=True, highlight=False, emoji=False)
    for number, reason in report.refused:
        err.print(f"line {number}: {reason}", markup=False)
    refused = len(report.refused)
    colour = "green" if not refused else "yellow"
    summary = (
        f"[{colour}]stored {report.stored} rows from {escape(str(file))}; refused {refused}[/]"
    )
    if report.stored:
        summary += f" ({report.subjects} people"
        if report.groups_dropped:
            summary += (
                f"; group dropped on {report.groups_dropped} rows without fairness-analysis consent"
            )
        summary += ")"
    Console(soft_wrap=True, highlight=False, emoji=False).print(summary)
    if not report.stored:
        err.print("[yellow]warning:[/] nothing was stored")


@app.command("items")
def items(
    run_dir: Path = typer.Argument(..., help="The run directory."),  # noqa: B008
    cycle: int | None = typer.Option(None, "--cycle", min=0, help="Only this cycle's items."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the item ids this run showed (what `feedback import` lines may rate), by cycle."""
    import json

    from rich.table import Table

    from guarded_rl.commands.consent import items as run_items

    found = run_items(run_dir, cycle=cycle)
    if as_json:
        typer.echo(json.dumps({"items": found}, indent=2))
        return
    console = Console(soft_wrap=True, highlight=False)
    if not found:
        console.print("no items on record" + (f" for cycle {cycle}" if cycle is not None else ""))
        return
    table = Table("item_id", "cycle", "feedback rows")
    for item in found:
        cycle_text = "-" if item["cycle"] is None else str(item["cycle"])
        table.add_row(item["item_id"], cycle_text, str(item["feedback_rows"]))
    console.print(table)
    console.print(f"{len(found)} item(s)")

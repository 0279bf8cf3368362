"""`guarded-rl report`: a compliance report (HTML, Markdown or JSON) from a run's audit log."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console

from guarded_rl.errors import IntegrityError


class Format(StrEnum):
    html = "html"
    md = "md"
    json = "json"


def report(
    run_dir: Path = typer.Argument(..., help="The run directory."),  # noqa: B008
    framework: str = typer.Option(
        "eu-ai-act",
        "--framework",
        help="eu-ai-act, nist-ai-rmf, iso-42001, or a framework .toml file.",
    ),
    fmt: Format = typer.Option(Format.html, "--format", help="html, md or json."),  # noqa: B008
    out: Path | None = typer.Option(  # noqa: B008
        None, "--out", help="Output file (default: RUN_DIR/report-FRAMEWORK.FORMAT)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out file."),
    allow_unverified: bool = typer.Option(
        False,
        "--allow-unverified",
        help="Exit 0 even when the log fails verification (the report still says so first).",
    ),
    replay: bool = typer.Option(
        False, "--replay", help="Re-execute every update and put the results in the report."
    ),
) -> None:
    """Verify the run's log, then report control by control with evidence references."""
    from guarded_rl.atomic import atomic_write
    from guarded_rl.output import check_output, write_output
    from guarded_rl.report.build import attach_replay, build_report
    from guarded_rl.report.frameworks import load_framework
    from guarded_rl.report.markdown import render_markdown

    spec = load_framework(framework)  # an unknown or malformed framework fails before reading
    if out is not None:
        check_output(out, field="--out", force=force)  # before the work, not after
    content = build_report(run_dir, spec)
    if replay and content["verification"]["ok"]:
        from guarded_rl.commands.replay import replay_updates
        from guarded_rl.runner import open_run

        attach_replay(content, replay_updates(open_run(run_dir)))
    if fmt is Format.json:
        text = json.dumps(content, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    elif fmt is Format.md:
        text = render_markdown(content)
    else:
        from guarded_rl.report.html import render_html

        text = render_html(content)
    if out is not None:
        target = out
        write_output(out, text.encode("utf-8"), field="--out", force=force)
    else:  # the report's own file in the run directory, rewritten on every report
        target = run_dir / f"report-{spec.name}.{fmt.value}"
        atomic_write(target, text.encode("utf-8"))
    console = Console(soft_wrap=True)
    console.print(content["headline"], markup=False)
    summary = content["control_summary"]
    unverified = f", {summary['unverified']} unverified" if summary["unverified"] else ""
    console.print(
        f"{spec.title}: {summary['met']} met, {summary['partly met']} partly met, "
        f"{summary['gap']} gap(s){unverified}",
        markup=False,
    )
    console.print(f"report: {target}", markup=False)
    if not content["verification"]["ok"] and not allow_unverified:
        raise IntegrityError(
            "the audit log failed verification; the report says so on its first line",
            file=str(run_dir),
            expected="an intact log, or --allow-unverified",
        )

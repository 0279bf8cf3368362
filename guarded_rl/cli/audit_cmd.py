"""`guarded-rl audit ...`: verify, show, explain, head and repair a run's audit log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from guarded_rl.errors import InputError, IntegrityError
from guarded_rl.jsonl import writer as jsonl_writer

app = typer.Typer(help="Prove, read and explain a run's audit log.", no_args_is_help=True)

RunDir = typer.Argument(..., help="The run directory.")


@app.command("verify")
def verify(
    run_dir: Path = RunDir,
    anchor: Path | None = typer.Option(  # noqa: B008
        None, "--anchor", help="An earlier audit.head kept elsewhere: the log must extend it."
    ),
    public_key: Path | None = typer.Option(  # noqa: B008
        None, "--public-key", help="Public key PEM from an independent copy (default: audit.pub)."
    ),
) -> None:
    """Check chain, Merkle root, head signature, checkpoints (exit 0 intact, 3 not, 2 usage)."""
    from guarded_rl.audit.verify import verify_run

    report = verify_run(run_dir, public_key=public_key, anchor=anchor)
    if not report.ok:
        raise IntegrityError(f"verification failed at {report.failure}", file=str(run_dir))
    notes = f"; {'; '.join(report.notes)}" if report.notes else ""
    Console(soft_wrap=True).print(
        f"[green]intact[/green] {run_dir}: {report.entries} entries, signed head covers "
        f"{report.signed_size} (root {report.root_hash[:16]}), {report.checkpoints} checkpoint "
        f"references verified, {report.decisions} reviewer signature(s) verified{notes}"
    )


@app.command("head")
def head(run_dir: Path = RunDir) -> None:
    """Print the signed head (store it elsewhere as an anchor for `verify --anchor`)."""
    from guarded_rl.audit.head import read_head

    typer.echo(read_head(run_dir / "audit.head").to_json(), nl=False)


@app.command("show")
def show(
    run_dir: Path = RunDir,
    type_: str | None = typer.Option(None, "--type", help="Only entries of this type."),
    as_json: bool = typer.Option(False, "--json", help="One JSON entry per line."),
) -> None:
    """List the entries of a verified log."""
    from guarded_rl.audit.history import RunHistory

    history = RunHistory.load(run_dir)
    entries = [e for e in history.entries if type_ is None or e.type == type_]
    if type_ is not None and not entries:
        types = sorted({e.type for e in history.entries})
        raise InputError(
            "no entries of this type",
            field="--type",
            got=type_,
            expected=f"one of {', '.join(types)}",
        )
    if as_json:
        out = jsonl_writer(sys.stdout, sort_keys=True)
        for e in entries:
            out.write(
                {"seq": e.seq, "ts": e.ts, "type": e.type, "payload": e.payload, "hash": e.hash}
            )
        return
    console = Console(soft_wrap=True)
    for e in entries:
        summary = ", ".join(
            f"{k}={v}" for k, v in e.payload.items() if isinstance(v, str | int | float | bool)
        )
        console.print(f"{e.seq:>5}  {e.type:<17} {summary[:160]}", markup=False)


@app.command("explain")
def explain(
    run_dir: Path = RunDir,
    update: int = typer.Argument(..., help="The cycle of the update to explain."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable explanation."),
) -> None:
    """Explain one update in plain words: trigger, feedback, safety, bias, drift, decision."""
    from guarded_rl.audit.explain import explain_update, render_explanation
    from guarded_rl.audit.history import RunHistory

    explanation = explain_update(RunHistory.load(run_dir), update)
    if as_json:
        typer.echo(json.dumps(explanation, indent=2, sort_keys=True))
    else:
        typer.echo(render_explanation(explanation))


@app.command("repair")
def repair(
    run_dir: Path = RunDir,
    key_file: Path | None = typer.Option(  # noqa: B008
        None, "--key-file", help="The run's signing key (default: as recorded in run.toml)."
    ),
) -> None:
    """After a crash: remove a torn last line, re-sign complete entries, record the repair."""
    from guarded_rl.audit.repair import repair_run

    result = repair_run(run_dir, key_file=key_file)
    if not result["repaired"]:
        typer.echo(f"nothing to repair in {run_dir}")
        return
    typer.echo(
        f"repaired {run_dir}: removed {result['torn_tail_removed_bytes']} bytes of torn tail, "
        f"re-signed entries {result['resigned_from_seq']}..{result['resigned_to_seq']}"
    )

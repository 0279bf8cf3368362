"""`guarded-rl audit ...`: verify, show, explain, head and repair a run's audit log; its schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from guarded_rl.errors import AuditError, InputError, IntegrityError
from guarded_rl.jsonl import writer as jsonl_writer

if TYPE_CHECKING:
    from guarded_rl.audit.head import SignedHead

#: A signed head is about 300 bytes; anything far larger is not one.
MAX_ANCHOR_BYTES = 64 * 1024

app = typer.Typer(help="Prove, read and explain a run's audit log.", no_args_is_help=True)

RunDir = typer.Argument(..., help="The run directory.")


@app.command("verify")
def verify(
    run_dir: Path = RunDir,
    anchor: str | None = typer.Option(
        None,
        "--anchor",
        help="An earlier head kept elsewhere, as a file or as the JSON text `audit head` "
        "printed: the log must extend it.",
    ),
    public_key: Path | None = typer.Option(  # noqa: B008
        None, "--public-key", help="Public key PEM from an independent copy (default: audit.pub)."
    ),
) -> None:
    """Check chain, Merkle root, head signature, checkpoints (exit 0 intact, 3 not, 2 usage)."""
    from guarded_rl.commands.verify import verify_run

    report = verify_run(run_dir, public_key=public_key, anchor=_anchor(anchor))
    if not report.ok:
        raise IntegrityError(f"verification failed at {report.failure}", file=str(run_dir))
    notes = f"; {'; '.join(report.notes)}" if report.notes else ""
    Console(soft_wrap=True).print(
        f"[green]intact[/green] {run_dir}: {report.entries} entries, signed head covers "
        f"{report.signed_size} (root {report.root_hash[:16]}), {report.checkpoints} checkpoint "
        f"references verified, {report.decisions} reviewer signature(s) verified, feedback "
        f"store bound to the run{notes}"
    )
    Console(soft_wrap=True).print(NOT_COVERED)


NOT_COVERED = (
    "not covered by verify: run.toml and summary.json (readable copies; the signed settings "
    "and outcome are in the log), blobs in checkpoints/ that no checkpoint refers to, and the "
    "feedback store's contents (only which store it is; `guarded-rl replay` re-checks the "
    "training inputs)"
)


#: What `--anchor` takes, for its errors.
ANCHOR_EXPECTED = "an earlier audit.head file, or the JSON text `guarded-rl audit head` printed"


def _anchor(value: str | None) -> SignedHead | None:
    """`--anchor`: JSON text when it starts with `{`, else a file; either must parse as a head.

    An anchor that cannot be read is a usage error (exit 2); one that parses but does not match
    the log is a verification failure (exit 3).
    """
    from guarded_rl.audit.head import SignedHead

    if value is None:
        return None
    if value.lstrip().startswith("{"):
        text, source = value, "--anchor"
    else:
        path = Path(value)
        if not path.is_file():
            what = "no such anchor file" if not path.exists() else "anchor is not a regular file"
            raise InputError(what, field="--anchor", got=value, expected=ANCHOR_EXPECTED)
        try:
            text = read_text_limited(path, limit=MAX_ANCHOR_BYTES)
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise InputError(
                f"cannot read anchor: {reason}", field="--anchor", got=value,
                expected=ANCHOR_EXPECTED,
            ) from None  # fmt: skip
        source = f"--anchor {value}"
    try:
        return SignedHead.from_json(text, source=source)
    except AuditError as exc:
        raise InputError(exc.message, file=exc.file, expected=ANCHOR_EXPECTED) from None


def read_text_limited(path: Path, *, limit: int) -> str:
    """A small text file's contents; a larger one is refused, not read whole."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputError(
            f"anchor is larger than {limit} bytes", field="--anchor", got=str(path),
            expected=ANCHOR_EXPECTED,
        )  # fmt: skip
    return data.decode("utf-8")


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
    update: str = typer.Argument(
        ..., help="The update to explain: its id as `review list` shows it (u3) or its cycle (3)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable explanation."),
) -> None:
    """Explain one update in plain words: trigger, feedback, safety, bias, drift, decision."""
    from guarded_rl.audit.explain import explain_update, render_explanation
    from guarded_rl.audit.history import RunHistory
    from guarded_rl.update_ids import parse_update_id

    cycle = parse_update_id(update, field="UPDATE")
    explanation = explain_update(RunHistory.load(run_dir), cycle)
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
    from guarded_rl.commands.repair import repair_run

    result = repair_run(run_dir, key_file=key_file)
    if not result["repaired"]:
        typer.echo(f"nothing to repair in {run_dir}")
        return
    typer.echo(
        f"repaired {run_dir}: removed {result['torn_tail_removed_bytes']} bytes of torn tail, "
        f"re-signed entries {result['resigned_from_seq']}..{result['resigned_to_seq']}"
    )


@app.command("schema")
def schema(
    entry_type: str | None = typer.Option(
        None, "--type", help="Only this entry type (e.g. update_proposed)."
    ),
) -> None:
    """Print the JSON Schema of audit entries: the envelope and every entry type's payload."""
    from guarded_rl.audit.events import json_schema

    document = json_schema([entry_type] if entry_type is not None else None)
    typer.echo(json.dumps(document, indent=2, sort_keys=True))

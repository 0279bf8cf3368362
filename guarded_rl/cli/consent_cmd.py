"""`guarded-rl consent grant|revoke|show|list|export|purge RUN_DIR`: the consent ledger of a run."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from guarded_rl.output import check_output, write_output

app = typer.Typer(
    help="Consent of the people whose feedback a run stores: grant, revoke (erases), show, "
    "list, export, purge expired feedback.",
    no_args_is_help=True,
)

_RUN_DIR = typer.Argument(..., help="The run directory.")
_USER = typer.Option(..., "--user", help="The person's external id (never stored in clear).")
_KEY_FILE = typer.Option(
    None, "--key-file", help="The run's signing key (default: as recorded in run.toml)."
)


@app.command("grant")
def grant(
    run_dir: Path = _RUN_DIR,
    user: str = _USER,
    purpose: list[str] = typer.Option(  # noqa: B008
        ..., "--purpose", help="training, evaluation or fairness-analysis (repeat for several)."
    ),
    key_file: Path | None = _KEY_FILE,
) -> None:
    """Record a person's consent for the given purposes (under the run's consent text)."""
    from guarded_rl.commands.consent import grant as grant_consent

    payload = grant_consent(run_dir, user, purpose, key_file=key_file)
    Console(soft_wrap=True).print(
        f"granted {', '.join(payload['purposes'])} for {payload['subject']} "
        f"(consent text {payload['consent_text_sha256'][:12]})"
    )


@app.command("revoke")
def revoke(
    run_dir: Path = _RUN_DIR,
    user: str = _USER,
    key_file: Path | None = _KEY_FILE,
) -> None:
    """Withdraw every consent of a person and erase their data (crypto-shredding)."""
    from guarded_rl.commands.consent import revoke as revoke_consent

    erased = revoke_consent(run_dir, user, key_file=key_file)
    console = Console(soft_wrap=True)
    console.print(
        f"revoked all consent of {erased['subject']}; erased {erased['feedback_rows']} feedback "
        f"row(s) and {erased['replay_rows']} sealed replay row(s); subject key destroyed: "
        f"{'yes' if erased['key_destroyed'] else 'no key was held'}"
    )
    live, undone = erased["live_updates"], erased["rolled_back_updates"]
    if live:
        target = erased["rollback_target"]
        undo = (
            f"`guarded-rl rollback {run_dir} --to {target} --reason ...` returns to the last "
            "update before them"
            if target is not None
            else "no applied update precedes them: only the start model is free of it"
        )
        console.print(
            f"[yellow]revocation is not retroactive:[/] {len(live)} applied update(s) in the "
            f"live weights were trained on this person's feedback ({_cycles(live)}) and "
            f"stay live; {undo}."
        )
    else:
        console.print("no update in the live weights was trained on this person's feedback.")
    if undone:
        console.print(
            f"{len(undone)} other applied update(s) trained on it were rolled back and are not "
            f"in the live weights ({_cycles(undone)})."
        )


def _cycles(updates: list[dict[str, object]]) -> str:
    """`cycle 2` or `cycles 2, 3, 5`."""
    word = "cycle" if len(updates) == 1 else "cycles"
    return f"{word} " + ", ".join(str(u["cycle"]) for u in updates)


@app.command("show")
def show(
    run_dir: Path = _RUN_DIR,
    user: str = _USER,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A person's consents, how much of their feedback is held, and what it trained."""
    from guarded_rl.commands.consent import show as show_consent

    info = show_consent(run_dir, user)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    console = Console(soft_wrap=True)
    console.print(f"pseudonym {info['pseudonym']}")
    if not info["consents"]:
        console.print("no consent on record")
    for c in info["consents"]:
        state = "current" if c["current"] else f"revoked {_when(c['revoked_at'])}"
        console.print(
            f"  {c['purpose']:<18} granted {_when(c['granted_at'])}  {state}  "
            f"(text {c['consent_text_sha256'][:12]})"
        )
    console.print(f"feedback rows held: {info['feedback_rows']}")
    console.print(f"live updates trained on it: {_cycles(info['live_updates']) or 'none'}")
    if info["rolled_back_updates"]:
        console.print(f"rolled back updates trained on it: {_cycles(info['rolled_back_updates'])}")


@app.command("list")
def list_(
    run_dir: Path = _RUN_DIR,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Who consented to what: every person by pseudonym, purposes current and revoked, and
    how many feedback rows are held (no ids, nothing decrypted)."""
    from guarded_rl.commands.consent import ledger

    people = ledger(run_dir)
    if as_json:
        typer.echo(json.dumps({"people": people}, indent=2))
        return
    console = Console(soft_wrap=True, highlight=False)
    if not people:
        console.print("no consent on record")
        return
    table = Table("pseudonym", "current consent", "revoked", "feedback rows")
    for p in people:
        table.add_row(
            p["pseudonym"],
            ", ".join(p["current"]) or "-",
            ", ".join(p["revoked"]) or "-",
            str(p["feedback_rows"]),
        )
    console.print(table)
    current = sum(1 for p in people if p["current"])
    console.print(f"{len(people)} people on record, {current} with a current consent")


@app.command("export")
def export(
    run_dir: Path = _RUN_DIR,
    user: str = _USER,
    output: Path | None = typer.Option(  # noqa: B008
        None, "--output", "-o", help="Write the JSON here (default: standard output)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing --output file."),
) -> None:
    """All of a person's data as JSON, decrypted for that person only."""
    from guarded_rl.commands.consent import export as export_data

    if output is not None:
        check_output(output, field="--output", force=force)  # before any data is decrypted
    document = json.dumps(export_data(run_dir, user), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(document)
        return
    # it holds personal data: 0600
    write_output(output, document.encode("utf-8"), field="--output", force=force, mode=0o600)
    Console(stderr=True).print(f"wrote {output}")


@app.command("purge")
def purge(
    run_dir: Path = _RUN_DIR,
    days: int | None = typer.Option(
        None, "--days", min=1, help="Retention in days (default: the run policy's)."
    ),
    key_file: Path | None = _KEY_FILE,
) -> None:
    """Delete feedback older than the retention period; the purge is recorded."""
    from guarded_rl.commands.consent import purge as purge_expired

    payload = purge_expired(run_dir, retention_days=days, key_file=key_file)
    Console(soft_wrap=True).print(
        f"purged {payload['feedback_rows']} feedback row(s) older than "
        f"{payload['retention_days']} day(s)"
    )


def _when(timestamp: Any) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(float(timestamp), UTC).strftime("%Y-%m-%d %H:%M:%SZ")

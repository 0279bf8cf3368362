"""`guarded-rl replay` and `guarded-rl rollback`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console

from guarded_rl.cli.phases import phase_lines
from guarded_rl.errors import IntegrityError
from guarded_rl.progress import reporting


def replay(
    run_dir: Path = typer.Argument(..., help="The run directory."),  # noqa: B008
    update: str | None = typer.Option(
        None, "--update", help="Only this update: its id (u3) or its cycle (3)."
    ),
) -> None:
    """Re-execute recorded updates and check the weights are bit-identical."""
    from guarded_rl.commands.replay import replay_updates
    from guarded_rl.runner import open_run
    from guarded_rl.update_ids import parse_update_id

    cycle = None if update is None else parse_update_id(update, field="--update")
    console = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    err.print(f"loading {run_dir}: verifying the log, loading the model ...", markup=False)
    opened = open_run(run_dir)
    with reporting(phase_lines(err)):
        lines = replay_updates(opened, cycle, on_update=_replaying(err))
    colours = {"reproduced": "green", "differs": "red", "not replayable": "yellow"}
    for line in lines:
        extra = (
            f" (largest difference {line.max_abs_diff:g})"
            if line.status == "differs" and line.max_abs_diff is not None
            else ""
        )
        console.print(
            f"update {line.cycle:>3}: [{colours[line.status]}]{line.status}[/] {line.detail}{extra}"
        )
    differing = [line.cycle for line in lines if line.status == "differs"]
    if differing:
        raise IntegrityError(
            f"{len(differing)} update(s) did not reproduce", field="update", got=differing[0]
        )


def rollback(
    run_dir: Path = typer.Argument(..., help="The run directory."),  # noqa: B008
    to: str = typer.Option(
        ..., "--to", help="The applied update to return to: its id (u3) or its cycle (3)."
    ),
    reason: str = typer.Option(..., "--reason", help="Why: recorded in the audit log."),
    key_file: Path | None = typer.Option(  # noqa: B008
        None, "--key-file", help="The run's signing key (default: as recorded in run.toml)."
    ),
) -> None:
    """Restore model and optimizer state after an update; `run --resume` continues from it."""
    from guarded_rl.commands.replay import rollback
    from guarded_rl.update_ids import parse_update_id

    cycle = parse_update_id(to, field="--to")
    err = Console(stderr=True, soft_wrap=True)
    err.print(f"loading {run_dir}: verifying the log, loading the model ...", markup=False)

    def loaded() -> None:
        err.print(
            f"rebuilding the weights and optimizer state after update {cycle} ...", markup=False
        )

    with reporting(phase_lines(err)):
        payload = rollback(run_dir, cycle, reason, key_file=key_file, on_loaded=loaded)
    typer.echo(
        f"rolled back {run_dir} to update {cycle} (weights {payload['model_sha256'][:12]}); "
        f"`guarded-rl run --resume {run_dir}` continues from there"
    )


def _replaying(err: Console) -> Callable[[int, int, int], None]:
    def say(cycle: int, done: int, total: int) -> None:
        err.print(f"replaying update {cycle} ({done + 1} of {total}) ...", markup=False)

    return say

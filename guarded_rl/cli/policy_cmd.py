"""`guarded-rl policy ...`: validate and show guard policies."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from guarded_rl.policy import load_policy

app = typer.Typer(help="Validate and inspect guard policy files.", no_args_is_help=True)


@app.command("check")
def check(
    file: Path = typer.Argument(  # noqa: B008
        ..., help="Policy TOML file, or the name of a shipped policy (default, strict)."
    ),
) -> None:
    """Validate a policy file: exit 0 when valid, 2 with a one-line reason when not."""
    policy = load_policy(file)
    Console().print(
        f"[green]ok[/green] {file}: policy '{policy.name}' "
        f"(filters: {', '.join(policy.safety.filters)}; "
        f"auto-approve below probe KL {policy.gate.max_step_kl})",
        soft_wrap=True,
    )

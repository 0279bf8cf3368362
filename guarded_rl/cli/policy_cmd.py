"""`guarded-rl policy ...`: validate and show guard policies."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from guarded_rl.cli.allow_code import ALLOW_CODE
from guarded_rl.fairness.suite_check import check_probe_suite
from guarded_rl.policy import load_policy
from guarded_rl.safety.code_allow import allowing, policy_code, require_policy_code_allowed

app = typer.Typer(help="Validate and inspect guard policy files.", no_args_is_help=True)


@app.command("check")
def check(
    file: Path = typer.Argument(  # noqa: B008
        ..., help="Policy TOML file, or the name of a shipped policy (default, strict)."
    ),
    allow_code: list[str] | None = ALLOW_CODE,
) -> None:
    """Validate a policy file: exit 0 when valid, 2 with a one-line reason when not."""
    policy = load_policy(file)
    with allowing(allow_code or []):
        require_policy_code_allowed(policy.safety, file=str(file))
    check_probe_suite(policy, source=str(file))  # a run would need it
    console = Console()
    console.print(
        f"[green]ok[/green] {file}: policy '{policy.name}' "
        f"(filters: {', '.join(policy.safety.filters)}; "
        f"auto-approve below probe KL {policy.gate.max_step_kl})",
        soft_wrap=True,
    )
    code = policy_code(policy.safety)
    for field, spec in code:
        console.print(f"loads code: {spec} ({field})", soft_wrap=True, markup=False)
    if not code:
        console.print("loads code: none (built-in filters only)")

"""`guarded-rl run`: guarded generate → feedback → update cycles with live progress."""

from __future__ import annotations

import math
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from guarded_rl.cli.allow_code import ALLOW_CODE
from guarded_rl.cli.phases import phase_in_task, phase_lines
from guarded_rl.errors import InputError
from guarded_rl.fairness.suite_check import check_probe_suite
from guarded_rl.policy import load_policy, validation_error_to_input_error
from guarded_rl.progress import reporting
from guarded_rl.safety.code_allow import grant, require_policy_code_allowed

if TYPE_CHECKING:  # the runner loads torch: only commands that run need it
    from guarded_rl.guard import CycleReport


def run(
    policy: Path | None = typer.Option(  # noqa: B008
        None, "--policy", help="Guard policy TOML or shipped name, e.g. strict (default: defaults)."
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="save_pretrained directory or cached hub id (default: embedded).",
    ),
    cycles: int | None = typer.Option(
        None, "--cycles", help="Generate → update cycles (default 40; with --resume: as before)."
    ),
    run_dir: Path | None = typer.Option(  # noqa: B008
        None, "--run-dir", help="New or empty directory for this run (default: runs/<time>)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for sampling, readers and every cycle."),
    users: int = typer.Option(24, "--users", help="Simulated readers per cycle."),
    prompt: str = typer.Option("", "--prompt", help="Feed prompt (empty: the model picks)."),
    interactive: bool = typer.Option(
        False, "--interactive", help="You rate each shown item at the terminal."
    ),
    resume_dir: Path | None = typer.Option(  # noqa: B008
        None, "--resume", help="Continue this run from its live weights (e.g. after a rollback)."
    ),
    key_file: Path | None = typer.Option(  # noqa: B008
        None,
        "--key-file",
        help="Signing key path (new runs: created there; default: a new file in "
        "$XDG_DATA_HOME/guarded-rl/keys/).",
    ),
    operator: str | None = typer.Option(
        None,
        "--operator",
        help="Who starts (or resumes) the run (default: your login name); with four-eyes on "
        "they cannot approve its updates.",
    ),
    operator_key: Path | None = typer.Option(  # noqa: B008
        None,
        "--operator-key",
        help="Your reviewer private key: with four-eyes on and a reviewers file, the start (or "
        "resume) is signed with it, so you cannot approve this run's updates yourself.",
    ),
    reviewers: Path | None = typer.Option(  # noqa: B008
        None, "--reviewers", help="Reviewers file (overrides the policy's gate.reviewers)."
    ),
    allow_code: list[str] | None = ALLOW_CODE,
) -> None:
    """Run guarded cycles and write the run directory (audit log, checkpoints, summary)."""
    from guarded_rl.runner import RunConfig
    from guarded_rl.runner import run as run_guarded

    console = Console(soft_wrap=True)
    grant(allow_code or [])  # the policy's custom scorers may load only these modules
    if resume_dir is not None:
        if reviewers is not None:
            raise InputError(
                "a run keeps the reviewers file it started with",
                field="--reviewers",
                got=str(reviewers),
                expected="no --reviewers with --resume (edit that file to add or remove people)",
            )
        _resume(console, resume_dir, cycles, key_file, operator, operator_key)
        return
    cycles = 40 if cycles is None else cycles
    guard_policy = load_policy(policy)
    require_policy_code_allowed(guard_policy.safety, file=str(policy))
    check_probe_suite(guard_policy, source=str(policy))
    if reviewers is not None:
        gate = guard_policy.gate.model_copy(update={"reviewers": str(reviewers.resolve())})
        guard_policy = guard_policy.model_copy(update={"gate": gate})
    directory = run_dir or Path("runs") / datetime.now().strftime("run-%Y%m%d-%H%M%S")
    try:
        config = RunConfig(
            cycles=cycles,
            seed=seed,
            model=model,
            run_dir=str(directory),
            users_per_cycle=1 if interactive else users,
            prompt=prompt,
            interactive=interactive,
        )
    except ValidationError as exc:
        raise validation_error_to_input_error(
            exc, RunConfig, None, error_cls=InputError, key_prefix="--"
        ) from None

    extra: dict[str, Any] = {}
    if interactive:
        extra = _interactive_sources(console, guard_policy.consent.purpose, prompt)

    if key_file is None:  # chosen here so the user sees where their run's key lives
        from guarded_rl.rundir.paths import new_default_key_file

        key_file = new_default_key_file(directory)
    console.print(f"signing key: {key_file.absolute()} (mode 0600; keep it away from the run)")
    console.print(
        f"guarded-rl run: policy [bold]{guard_policy.name}[/bold], "
        f"model [bold]{model or 'embedded default'}[/bold], {cycles} cycles, seed {seed} "
        f"→ {directory}"
    )
    review_hooks = _review_hooks(console, directory)
    if interactive:
        with reporting(phase_lines(console)):
            summary = run_guarded(
                config,
                guard_policy,
                on_cycle=_line_printer(console),
                key_file=key_file,
                operator=operator,
                operator_key=operator_key,
                **review_hooks,
                **extra,
            )
    else:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("cycles", total=cycles)
            printer = _line_printer(progress.console)

            def on_cycle(report: CycleReport) -> None:
                printer(report)
                progress.advance(task)

            with reporting(phase_in_task(progress, task, "cycles")):
                summary = run_guarded(
                    config,
                    guard_policy,
                    on_cycle=on_cycle,
                    key_file=key_file,
                    operator=operator,
                    operator_key=operator_key,
                    **_review_hooks(progress.console, directory),
                )
    console.print(_final_table(summary))
    _print_review_state(console, summary, directory)
    console.print(f"run directory: {directory}")


def _resume(
    console: Console,
    run_dir: Path,
    cycles: int | None,
    key_file: Path | None,
    operator: str | None,
    operator_key: Path | None,
) -> None:
    from guarded_rl.runner import resume

    if cycles is not None and cycles < 1:
        raise InputError("must be at least 1", field="--cycles", got=cycles)
    console.print(f"guarded-rl run: resuming {run_dir}")
    with reporting(phase_lines(console)):
        summary = resume(
            run_dir,
            cycles=cycles,
            key_file=key_file,
            on_cycle=_line_printer(console),
            operator=operator,
            operator_key=operator_key,
            **_review_hooks(console, run_dir),
        )
    console.print(_final_table(summary))
    _print_review_state(console, summary, run_dir)
    console.print(f"run directory: {run_dir}")


def _review_hooks(console: Console, run_dir: Path) -> dict[str, Any]:
    """Tell the operator when reviews settle, and (every 30 s) what a waiting loop waits for."""
    last = {"said": -1e9}

    def on_review(lines: list[str]) -> None:
        for line in lines:
            console.print(f"review: {line}")

    def on_waiting(pending: list[Any], seconds_left: float) -> None:
        now = time.monotonic()
        if now - last["said"] < 30:
            return
        last["said"] = now
        ids = ", ".join(p.proposal_id for p in pending)
        console.print(
            f"waiting for review of {ids} ({seconds_left:.0f} s left): "
            f"guarded-rl review show {run_dir} {pending[0].proposal_id}"
        )

    return {"on_review": on_review, "on_waiting": on_waiting}


def _print_review_state(console: Console, summary: dict[str, Any], run_dir: Path) -> None:
    review = summary.get("review", {})
    pending = review.get("pending", [])
    if summary.get("outcome") == "review_timeout":
        console.print(
            "[yellow]stopped: the review wait timed out (gate.wait_timeout_seconds); "
            f"resume with: guarded-rl run --resume {run_dir}[/yellow]"
        )
    if pending:
        console.print(
            f"{len(pending)} update(s) await review ({', '.join(pending[:8])}"
            f"{' ...' if len(pending) > 8 else ''}): guarded-rl review list {run_dir}"
        )


def _interactive_sources(console: Console, purpose: str, prompt: str) -> dict[str, Any]:
    from guarded_rl.demo.interactive import PERSON, TerminalFeedback, person_requests
    from guarded_rl.runner import StopRun

    console.print(
        "You will be shown generated headlines that passed the safety screen. "
        "Rate each: y = like, n = dislike, s = skip, q = quit."
    )
    answer = typer.prompt(f"May your ratings be used for '{purpose}'? [y/n]", default="y")
    consents = {PERSON: [purpose]} if answer.strip().lower() in {"y", "yes"} else {}
    if not consents:
        console.print("No consent: your ratings are counted but never used for training.")
    return {
        "feedback_source": TerminalFeedback(ask=input, show=console.print, stop=StopRun),
        "requests_for": person_requests(prompt),
        "consents": consents,
    }


def _line_printer(console: Console) -> Any:
    colours = {"approved": "green", "pending": "yellow", "rejected": "red", None: "dim"}

    def print_line(report: CycleReport) -> None:
        kl = report.checks.get("probe_kl", {})
        like = "  n/a" if math.isnan(report.like_rate) else f"{report.like_rate:.2f}"
        outcome = report.outcome or "no update"
        console.print(
            f"cycle {report.cycle:>3}  like {like}  blocked {report.blocked}/{report.generated}"
            f"  trained on {report.training_samples}"
            f"  step KL {kl.get('kl_step', float('nan')):.4f}"
            f"  [{colours[report.outcome]}]{outcome}[/]",
            soft_wrap=True,
        )

    return print_line


def _final_table(summary: dict[str, Any]) -> Table:
    w = summary["window"]
    table = Table(title=f"guarded run: {summary['cycles']} cycles", show_header=True)
    table.add_column("measure")
    table.add_column(f"first {w} cycles", justify="right")
    table.add_column(f"last {w} cycles", justify="right")

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    table.add_row("like-rate", fmt(summary["like_rate_first"]), fmt(summary["like_rate_last"]))
    table.add_row(
        "share of output blocked",
        fmt(summary["blocked_share_first"]),
        fmt(summary["blocked_share_last"]),
    )
    table.add_row("KL live model ‖ start (probes)", "", fmt(summary["kl_to_reference"]))
    u = summary["updates"]
    table.add_row(
        "updates applied / pending / rejected",
        "",
        f"{u['applied']} / {u['pending']} / {u['rejected']}",
    )
    return table

"""`guarded-rl review keygen|list|show|approve|reject|submit`: people deciding on updates."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from guarded_rl.errors import InputError

if TYPE_CHECKING:
    from guarded_rl.approval.reviewers import Registry
    from guarded_rl.approval.run_review import RunReview

app = typer.Typer(
    help="Human review of pending updates: reviewer keys, the review queue, signed decisions.",
    no_args_is_help=True,
)

_RUN_DIR = typer.Argument(..., help="The run directory.")
_ID = typer.Argument(..., help="The proposal id, as `review list` shows it (u3), or its cycle (3).")
_REVIEWER = typer.Option(..., "--reviewer", help="Your name in the reviewers file.")
_KEY = typer.Option(..., "--key", help="Your private key file (from `review keygen`).")
_OUT = typer.Option(
    None,
    "--out",
    help="Write the signed decision to this file instead of submitting it "
    "(someone with access to the run submits it with `review submit`).",
)
_FORCE = typer.Option(False, "--force", help="Replace an existing --out file.")
_RUN_KEY = typer.Option(
    None, "--run-key-file", help="The run's log signing key (default: as recorded in run.toml)."
)


@app.command("keygen")
def keygen(
    name: str = typer.Option(..., "--name", help="The reviewer's name (letters, digits, . _ -)."),
    role: str = typer.Option("reviewer", "--role", help="Checked against gate.reviewer_roles."),
    key_file: Path | None = typer.Option(  # noqa: B008
        None, "--key-file", help="Where the private key goes (default: ./NAME.key, mode 0600)."
    ),
    reviewers: Path | None = typer.Option(  # noqa: B008
        None, "--reviewers", help="Add the reviewer to this reviewers file (created if missing)."
    ),
) -> None:
    """Create an Ed25519 key pair for a reviewer (the private key never leaves this file)."""
    from guarded_rl.approval.reviewers import create_reviewer_key, reviewer_toml
    from guarded_rl.output import check_output

    key_file = key_file or Path(f"{name}.key")
    check_output(key_file, field="--key-file")  # a private key is never replaced
    if reviewers is not None:  # appended to when it exists, but never a run's own file
        check_output(reviewers, field="--reviewers", force=reviewers.is_file())
    reviewer = create_reviewer_key(name, role, key_file, reviewers)
    console = Console(soft_wrap=True)
    console.print(f"private key: {key_file} (mode 0600; keep it to yourself)")
    console.print(f"fingerprint: {reviewer.fingerprint} (how the audit log names you)")
    if reviewers is not None:
        console.print(f"registered {name} ({role}) in {reviewers}")
    else:
        console.print("add this to the reviewers file your guard policy names (gate.reviewers):")
        console.print(reviewer_toml(reviewer).strip(), markup=False, highlight=False)


@app.command("list")
def list_queue(
    run_dir: Path = _RUN_DIR,
    show_all: bool = typer.Option(False, "--all", help="Also decided proposals."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """The review queue: pending proposals (with --all: every proposal ever sent to review)."""
    from guarded_rl.approval.queue import queued_decisions, refused_decisions
    from guarded_rl.approval.run_review import RunReview

    review = RunReview.read(run_dir)
    registry = _registry_or_none(review)
    now = time.time()
    rows = [p for p in review.queue.values() if show_all or p.status == "pending"]
    inbox = queued_decisions(run_dir)
    if as_json:
        out = [
            {
                "id": p.proposal_id,
                "cycle": p.cycle,
                "status": p.status,
                "rule": p.rule,
                "reasons": p.reasons,
                "approvals": len(p.approvals),
                "approvals_required": p.approvals_required,
                "approved_by": [registry.name_of(f) if registry else f for f in p.approvals],
                "created": p.created,
                "expires_at": p.expires_at,
                "candidate_sha256": p.candidate_sha256,
            }
            for p in rows
        ]
        refused = [{"file": n, "reason": r} for n, r in refused_decisions(run_dir)]
        typer.echo(
            json.dumps(
                {"proposals": out, "queued_decisions": len(inbox), "refused_decisions": refused},
                indent=2,
            )
        )
        return
    console = Console(soft_wrap=True)
    if not rows:
        console.print("no pending proposals" if not show_all else "no proposal went to review")
    else:
        table = Table(title=f"review queue of {run_dir}")
        for column in ("id", "cycle", "status", "why", "approvals", "made", "expires"):
            table.add_column(column)
        for p in rows:
            names = ", ".join(registry.name_of(f) if registry else f for f in p.approvals)
            expires = _left(p.expires_at - now) if p.status == "pending" else "-"
            table.add_row(
                p.proposal_id,
                str(p.cycle),
                p.status,
                "; ".join(p.reasons)[:80],
                f"{len(p.approvals)}/{p.approvals_required}" + (f" ({names})" if names else ""),
                _iso(p.created),
                expires,
            )
        console.print(table)
    if inbox:
        console.print(
            f"{len(inbox)} signed decision(s) wait for the live run to record them "
            f"({', '.join(d.body.proposal_id for d in inbox)})"
        )
    for name, reason in refused_decisions(run_dir):
        console.print(f"refused by the live run: {name}: {reason}", markup=False)


@app.command("show")
def show(
    run_dir: Path = _RUN_DIR,
    proposal_id: str = _ID,
    samples: int = typer.Option(
        4, "--samples", min=0, max=64, help="Outputs of live vs candidate model (0: none)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for the sample comparison."),
) -> None:
    """What a reviewer needs: checks, drift, decisions so far, and live vs candidate outputs."""
    from guarded_rl.approval.run_review import RunReview
    from guarded_rl.audit.explain import explain_update, render_explanation

    review = RunReview.read(run_dir)
    proposal = review.proposal(_proposal_id(proposal_id))
    registry = _registry_or_none(review)
    console = Console(soft_wrap=True)
    console.print(
        f"[bold]{proposal.proposal_id}[/bold] (cycle {proposal.cycle}): {proposal.status}; "
        f"{len(proposal.approvals)} of {proposal.approvals_required} approval(s)"
        + (
            f"; expires {_iso(proposal.expires_at)} (in {_left(proposal.expires_at - time.time())})"
            if proposal.status == "pending"
            else f" ({proposal.closed_because})"
            if proposal.closed_because
            else ""
        )
    )
    console.print(
        f"weights: live {proposal.base_sha256[:12]} -> candidate {proposal.candidate_sha256[:12]}"
    )
    text = render_explanation(explain_update(review.history, proposal.cycle))
    if registry is not None:
        for r in registry.reviewers:
            text = text.replace(r.fingerprint, f"{r.name} [{r.fingerprint}]")
    console.print(text, markup=False, highlight=False)
    if samples and review.history.started.get("integration"):
        console.print("(no output samples: this run is a user's own training loop)")
    elif samples:
        from guarded_rl.commands.compare import compare_samples

        table = Table(title=f"same prompts, seed {seed}: live vs candidate (screened)")
        for column in ("prompt", "live model", "candidate"):
            table.add_column(column, overflow="fold")
        for pair in compare_samples(run_dir, proposal, n=samples, seed=seed):
            table.add_row(pair.prompt, pair.live, pair.candidate)
        console.print(table)


@app.command("approve")
def approve(
    run_dir: Path = _RUN_DIR,
    proposal_id: str = _ID,
    reviewer: str = _REVIEWER,
    key: Path = _KEY,
    note: str = typer.Option("", "--note", help="Why (goes into the audit log; no personal data)."),
    out: Path | None = _OUT,
    run_key_file: Path | None = _RUN_KEY,
    force: bool = _FORCE,
) -> None:
    """Approve a pending update, signed with your key."""
    _decide(run_dir, proposal_id, "approve", reviewer, key, note, out, run_key_file, force)


@app.command("reject")
def reject(
    run_dir: Path = _RUN_DIR,
    proposal_id: str = _ID,
    reviewer: str = _REVIEWER,
    key: Path = _KEY,
    note: str = typer.Option(..., "--note", help="Why it is rejected (goes into the audit log)."),
    out: Path | None = _OUT,
    run_key_file: Path | None = _RUN_KEY,
    force: bool = _FORCE,
) -> None:
    """Reject a pending update, signed with your key; one rejection discards it."""
    if not note.strip():
        raise InputError("a rejection needs a reason", field="--note", got=note)
    _decide(run_dir, proposal_id, "reject", reviewer, key, note, out, run_key_file, force)


@app.command("submit")
def submit(
    run_dir: Path = _RUN_DIR,
    decision_file: Path = typer.Argument(..., help="A decision written by `--out`."),  # noqa: B008
    run_key_file: Path | None = _RUN_KEY,
) -> None:
    """Record a decision a reviewer signed elsewhere (checked exactly like a direct one)."""
    from guarded_rl.approval.run_review import read_decision
    from guarded_rl.commands.review import submit as submit_decision

    signed = read_decision(decision_file)
    _print_result(submit_decision(run_dir, signed, key_file=run_key_file))


def _decide(
    run_dir: Path,
    proposal_id: str,
    decision: Literal["approve", "reject"],
    reviewer: str,
    key: Path,
    note: str,
    out: Path | None,
    run_key_file: Path | None,
    force: bool = False,
) -> None:
    from guarded_rl.approval.run_review import sign_for, write_decision
    from guarded_rl.commands.review import submit as submit_decision
    from guarded_rl.output import check_output

    proposal_id = _proposal_id(proposal_id)
    if out is not None:
        check_output(out, field="--out", force=force)
    signed = sign_for(run_dir, proposal_id, decision, reviewer=reviewer, key_file=key, note=note)
    if out is not None:
        write_decision(out, signed, force=force)
        Console(soft_wrap=True).print(
            f"signed {decision} of {proposal_id} written to {out} "
            f"(submit it with: guarded-rl review submit {run_dir} {out})"
        )
        return
    _print_result(submit_decision(run_dir, signed, key_file=run_key_file))


def _print_result(result: dict[str, Any]) -> None:
    console = Console(soft_wrap=True)
    console.print(f"{result['proposal_id']}: {result['status']}: {result['detail']}")
    for line in result.get("also", []):
        console.print(f"  also settled: {line}")


def _proposal_id(text: str) -> str:
    """`u3` or `3` -> `u3`, the id the review queue keys proposals by."""
    from guarded_rl.approval.queue import proposal_id_of
    from guarded_rl.update_ids import parse_update_id

    return proposal_id_of(parse_update_id(text, field="ID"))


def _registry_or_none(review: RunReview) -> Registry | None:
    """The reviewers file for display; a missing or broken one only loses the names."""
    try:
        return review.registry()
    except InputError:
        return None


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(ts))


def _left(seconds: float) -> str:
    if seconds <= 0:
        return "expired"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"

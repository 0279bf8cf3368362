"""The `guarded-rl` command: one typer app; every command group lives in its own module.

`GuardedRLError` is caught here, once: one line on stderr, its exit code, no traceback unless
`--debug` is given (anywhere on the command line).
"""

from __future__ import annotations

import os
import sys
import traceback

import click
import typer

from guarded_rl.cli import audit_cmd, policy_cmd, replay_cmd, run_cmd, screen_cmd
from guarded_rl.errors import GuardedRLError

app = typer.Typer(
    name="guarded-rl",
    help="Guarded learning from feedback: safety, consent, bias checks, approval and audit "
    "around every model update. Add --debug anywhere to see tracebacks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("run")(run_cmd.run)
app.command("screen")(screen_cmd.screen)
app.command("replay")(replay_cmd.replay)
app.command("rollback")(replay_cmd.rollback)
app.add_typer(policy_cmd.app, name="policy")
app.add_typer(audit_cmd.app, name="audit")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("GUARDED_RL_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        result = app(args=args, prog_name="guarded-rl", standalone_mode=False)
    except GuardedRLError as exc:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"error: {exc.one_line()}\n")
        sys.exit(exc.exit_code)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    if isinstance(result, int):
        sys.exit(result)

"""The `guarded-rl` command: one typer app; every command group lives in its own module.

`GuardedRLError` is caught here, once: one line on stderr, its exit code, no traceback unless
`--debug` is given (anywhere on the command line).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import traceback
from importlib import metadata
from typing import Any

import click
import typer

from guarded_rl.cli import (
    audit_cmd,
    bias_cmd,
    consent_cmd,
    feedback_cmd,
    policy_cmd,
    replay_cmd,
    report_cmd,
    review_cmd,
    run_cmd,
    screen_cmd,
)
from guarded_rl.errors import EXIT_FAILURE, GuardedRLError


def _flags_show_no_type() -> None:
    """Draw flags without a type in the help.

    typer >= 0.26 renders its rich help with each option's type and gives flags, which take no
    value, the type `<bool>` (`--json <bool>` reads as if a value were expected); its plain
    help already leaves flags bare. Older typers have no `display_type_rich`: nothing to do.
    """
    option = getattr(getattr(typer, "core", None), "TyperOption", None)
    shown = getattr(option, "display_type_rich", None)
    if option is None or shown is None or getattr(shown, "flags_bare", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if self.is_flag and not self.count and self.metavar is None:
            return None
        return shown(self, ctx)

    display_type_rich.flags_bare = True  # type: ignore[attr-defined]  # typer's rich help module, patched on purpose
    option.display_type_rich = display_type_rich


_flags_show_no_type()


def package_version() -> str:
    """The installed distribution's version (a source tree without one: the package's own)."""
    try:
        return metadata.version("guarded-rl")
    except metadata.PackageNotFoundError:
        import guarded_rl

        return guarded_rl.__version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"guarded-rl {package_version()}")
        raise typer.Exit()


app = typer.Typer(
    name="guarded-rl",
    help="Guarded learning from feedback: safety, consent, bias checks, approval and audit "
    "around every model update. Add --debug anywhere to see tracebacks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the installed version and exit.",
    ),
) -> None:
    """Options of `guarded-rl` itself (the help text is the app's)."""


app.command("run")(run_cmd.run)
app.command("screen")(screen_cmd.screen)
app.command("replay")(replay_cmd.replay)
app.command("rollback")(replay_cmd.rollback)
app.command("report")(report_cmd.report)
app.add_typer(policy_cmd.app, name="policy")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(consent_cmd.app, name="consent")
app.add_typer(feedback_cmd.app, name="feedback")
app.add_typer(bias_cmd.app, name="bias")
app.add_typer(review_cmd.app, name="review")


def _usage_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """Usage errors and aborts, from click and from the copy of click newer typers bundle."""
    usage: list[type[BaseException]] = [click.exceptions.ClickException]
    aborts: list[type[BaseException]] = [click.exceptions.Abort, KeyboardInterrupt]
    try:
        from typer._click import exceptions as bundled  # typer >= 0.26 ships its own click

        usage.append(bundled.ClickException)
    except ImportError:
        pass
    aborts.append(typer.Abort)
    return tuple(dict.fromkeys(usage)), tuple(dict.fromkeys(aborts))


USAGE_ERRORS, ABORTS = _usage_errors()


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
    except USAGE_ERRORS as exc:
        exc.show()  # type: ignore[attr-defined]  # every USAGE_ERRORS class has show()
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]  # every USAGE_ERRORS class has exit_code
    except ABORTS:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except OSError as exc:  # a file or folder we may not read or write: not a bug, one line
        if debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"error: {where}{exc.strerror or exc} (check its permissions)\n")
        sys.exit(EXIT_FAILURE)
    except sqlite3.OperationalError as exc:  # e.g. "attempt to write a readonly database"
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"error: feedback store: {exc} (check the run directory's permissions)\n")
        sys.exit(EXIT_FAILURE)
    if isinstance(result, int):
        sys.exit(result)

"""The `--allow-code MODULE` option of every command that may load a policy's custom scorers."""

from __future__ import annotations

import typer

from guarded_rl.safety.code_allow import ENV_ALLOW

ALLOW_CODE = typer.Option(
    None,
    "--allow-code",
    metavar="MODULE",
    help="Allow the policy's [safety.custom] scorers to load code from MODULE (and its "
    f"submodules); repeatable; also {ENV_ALLOW}. Modules such as os, subprocess, builtins "
    "are never loaded.",
)

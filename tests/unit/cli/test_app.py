"""The `guarded-rl` app itself: `--version`, and the help of every command."""

from __future__ import annotations

from importlib.metadata import version

import click
import pytest
import typer
from typer.testing import CliRunner

from guarded_rl.cli.app import app, main


def _command_paths(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group of the app, as the words that name it."""
    paths = [path]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _command_paths(sub, (*path, name))
    return paths


def test_version_prints_the_installed_package_version(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code in (0, None)
    assert capsys.readouterr().out == f"guarded-rl {version('guarded-rl')}\n"


def test_no_help_shows_a_type_after_a_flag() -> None:
    """Flags take no value: `--json <bool>` reads as if one were expected."""
    paths = _command_paths(typer.main.get_command(app))
    assert len(paths) > 20  # the whole tree, groups included
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "--help" in result.output, path
        assert "<bool>" not in result.output, (path, result.output)

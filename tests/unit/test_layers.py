"""Every module of the package sits in one of the import layers that `make test` enforces
(pyproject.toml, `[tool.importlinter]`): a module left out would be unconstrained."""

from __future__ import annotations

import tomllib
from pathlib import Path

import guarded_rl

ROOT = Path(guarded_rl.__file__).parent
PYPROJECT = ROOT.parent / "pyproject.toml"


def _layers() -> list[set[str]]:
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    (contract,) = config["contracts"]
    return [{m.strip() for m in layer.split("|")} for layer in contract["layers"]]


def _modules() -> set[str]:
    """Top-level modules and packages, and the parts of `rundir` (layered one by one)."""
    names = set()
    for path in ROOT.iterdir():
        if path.name.startswith("_") or path.name in ("policies", "py.typed"):
            continue
        if path.suffix == ".py" or (path / "__init__.py").is_file():
            names.add(f"guarded_rl.{path.stem}")
    names.discard("guarded_rl.rundir")
    names |= {f"guarded_rl.rundir.{p.stem}" for p in (ROOT / "rundir").glob("[!_]*.py")}
    return names


def test_every_module_is_in_exactly_one_layer() -> None:
    listed = [m for layer in _layers() for m in layer]
    assert sorted(listed) == sorted(set(listed))  # none twice
    assert set(listed) == _modules()


def test_the_command_line_is_on_top_and_errors_at_the_bottom() -> None:
    layers = _layers()
    assert layers[0] == {"guarded_rl.cli"} and layers[-1] == {"guarded_rl.errors"}

"""Which modules are for users: `guarded_rl` itself and `guarded_rl._PUBLIC_MODULES`, each with
an `__all__` of names it defines; everything else is internal. What we show users (README,
docs, examples) imports only public names, so a refactoring of internals cannot break it."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

import guarded_rl

ROOT = Path(guarded_rl.__file__).parent.parent
SHOWN = sorted(
    [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "examples").glob("*.py")]
)
_FROM_IMPORT = re.compile(r"^\+?\s*from (guarded_rl[\w.]*) import \(?([\w, ]+)", re.MULTILINE)


@pytest.mark.parametrize("name", guarded_rl._PUBLIC_MODULES)
def test_a_public_module_lists_what_it_defines_in_all(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(set(exported))
    for member in exported:
        value = getattr(module, member)  # every listed name exists
        if inspect.isclass(value) or inspect.isfunction(value):  # ours, not re-exported
            assert value.__module__ == name, (member, value.__module__)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        return [
            (node.module, [a.name for a in node.names])
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("guarded_rl")
        ]
    return [
        (m.group(1), [n.strip() for n in m.group(2).split(",") if n.strip()])
        for m in _FROM_IMPORT.finditer(text)
    ]


@pytest.mark.parametrize("path", SHOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_what_users_are_shown_imports_only_public_names(path: Path) -> None:
    for module, names in _imports(path):
        public = ("guarded_rl", *guarded_rl._PUBLIC_MODULES)
        assert module in public, f"{path.name}: imports from internal module {module}"
        exported = importlib.import_module(module).__all__
        for name in names:
            assert name in exported, f"{path.name}: {module}.{name} is not in its __all__"


def test_the_shown_files_were_found() -> None:
    assert any(p.name == "README.md" for p in SHOWN) and any(p.suffix == ".py" for p in SHOWN)

"""The public surface is exactly `__all__` (after httpx's tests/test_exported_members.py):
nothing public is left out of it, nothing in it is missing, and every name is our own."""

from __future__ import annotations

import types

import guarded_rl

#: module-level names of guarded_rl/__init__.py that are plumbing, not API
_PLUMBING = {"annotations", "importlib", "Any"}


def test_all_is_sorted_and_unique() -> None:
    assert guarded_rl.__all__ == sorted(set(guarded_rl.__all__))


def test_all_lists_every_public_name_and_only_those() -> None:
    eager = {
        name
        for name, value in vars(guarded_rl).items()
        if not name.startswith("_")
        and name not in _PLUMBING
        and not isinstance(value, types.ModuleType)  # submodules imported so far
    }
    lazy = set(guarded_rl._LAZY)
    assert set(guarded_rl.__all__) == eager | lazy | {"__version__"}


def test_every_exported_member_is_defined_in_the_package() -> None:
    for name in guarded_rl.__all__:
        if name == "__version__":
            continue
        member = getattr(guarded_rl, name)
        module = getattr(member, "__module__", "")
        assert module.startswith("guarded_rl."), (name, module)

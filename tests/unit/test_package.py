"""The top-level package: the public names resolve lazily, unknown names fail normally."""

from __future__ import annotations

import pytest

import guarded_rl


def test_every_public_name_resolves() -> None:
    for name in guarded_rl.__all__:
        assert getattr(guarded_rl, name) is not None, name


def test_lazy_names_are_the_real_objects() -> None:
    from guarded_rl.audit.log import AuditLog
    from guarded_rl.guard import Guard
    from guarded_rl.policy import load_policy

    assert guarded_rl.Guard is Guard
    assert guarded_rl.AuditLog is AuditLog
    assert guarded_rl.load_policy is load_policy


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        guarded_rl.no_such_name  # noqa: B018


def test_dir_lists_the_public_api() -> None:
    assert dir(guarded_rl) == sorted(guarded_rl.__all__)
    assert guarded_rl.__version__ == "0.1.0"

"""The error tree: one-line rendering with context, and the exit code each kind maps to."""

from __future__ import annotations

import pytest

from guarded_rl.errors import (
    EXIT_BAD_INPUT,
    EXIT_BLOCKED,
    EXIT_FAILURE,
    AuditError,
    ConsentError,
    GuardBlockedError,
    GuardedRLError,
    InputError,
    ModelLoadError,
    PolicyError,
)


def test_exit_code_constants_are_distinct() -> None:
    assert (EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_BLOCKED) == (1, 2, 3)


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (GuardedRLError, 1),
        (InputError, 2),
        (PolicyError, 2),
        (ModelLoadError, 1),
        (GuardBlockedError, 3),
        (AuditError, 1),
        (ConsentError, 1),
    ],
)
def test_exit_codes_and_common_base(cls: type[GuardedRLError], code: int) -> None:
    err = cls("boom")
    assert err.exit_code == code
    assert isinstance(err, GuardedRLError)


def test_policy_error_is_an_input_error() -> None:
    assert issubclass(PolicyError, InputError)
    with pytest.raises(InputError):
        raise PolicyError("bad")


def test_one_line_with_every_part() -> None:
    err = InputError(
        "invalid value", file="p.toml", field="safety.x", got=1.5, expected="less than 1"
    )
    assert err.one_line() == "p.toml: safety.x = 1.5: invalid value (expected less than 1)"
    assert str(err) == err.one_line()
    parts = (err.file, err.field, err.got, err.expected)
    assert parts == ("p.toml", "safety.x", 1.5, "less than 1")


def test_one_line_skips_unknown_parts() -> None:
    assert GuardedRLError("just this").one_line() == "just this"
    assert GuardedRLError("m", file="f").one_line() == "f: m"
    assert GuardedRLError("m", field="k").one_line() == "k: m"
    assert GuardedRLError("m", expected="e").one_line() == "m (expected e)"


def test_falsy_got_is_still_shown() -> None:
    # `got` is shown whenever it is not None, so 0, "" and [] are reported as values
    assert GuardedRLError("m", field="k", got=0).one_line() == "k = 0: m"
    assert GuardedRLError("m", field="k", got="").one_line() == "k = '': m"
    assert GuardedRLError("m", field="k", got=[]).one_line() == "k = []: m"


def test_strings_are_repr_quoted() -> None:
    assert "name = 'x y'" in GuardedRLError("m", field="name", got="x y").one_line()


def test_multiline_parts_collapse_to_one_line() -> None:
    err = AuditError("first\nsecond\n\tthird", file="a\nb", expected="x\ny")
    line = err.one_line()
    assert "\n" not in line
    assert "\t" not in line
    assert line == "a b: first second third (expected x y)"
    assert "\n" not in str(err)

"""`u3` and `3` name the same update in every command."""

from __future__ import annotations

import pytest

from guarded_rl.errors import InputError
from guarded_rl.update_ids import parse_update_id


@pytest.mark.parametrize(("text", "cycle"), [("u3", 3), ("3", 3), ("U12", 12), (" u0 ", 0)])
def test_both_spellings_give_the_cycle(text: str, cycle: int) -> None:
    assert parse_update_id(text) == cycle


@pytest.mark.parametrize("text", ["", "u", "x3", "u-1", "-1", "3.0", "u3u", "1" * 12])
def test_anything_else_is_one_line_naming_the_value_and_the_form(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_update_id(text, field="--to")
    line = caught.value.one_line()
    assert "\n" not in line and "--to" in line and "u3 or 3" in line
    assert repr(text[:40]) in line

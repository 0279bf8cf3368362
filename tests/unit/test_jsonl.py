"""JSON Lines through the `jsonlines` library: values, one-line errors naming file:line, output."""

from __future__ import annotations

import io
import json

import pytest

from guarded_rl.errors import InputError
from guarded_rl.jsonl import JsonLineError, loads_line, read_objects, writer


def test_a_line_parses_to_its_value() -> None:
    assert loads_line('{"text": "café", "n": [1, 2]}') == {"text": "café", "n": [1, 2]}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"text": ', "invalid JSON (Expecting value at column 10)"),
        ("{bad}", "invalid JSON (Expecting property name enclosed in double quotes at column 2)"),
        ("[" * 100_000, "invalid JSON (nested too deeply)"),
    ],
)
def test_a_bad_line_says_why_and_where(line: str, reason: str) -> None:
    with pytest.raises(JsonLineError) as info:
        loads_line(line)
    assert info.value.message == reason


def test_read_objects_numbers_lines_and_skips_blank_ones() -> None:
    text = '{"a": 1}\n\n   \n{"a": 2}\n'
    assert list(read_objects(text, name="in.jsonl")) == [(1, {"a": 1}), (4, {"a": 2})]


def test_the_first_bad_line_is_one_input_error_naming_file_and_line() -> None:
    with pytest.raises(InputError) as info:
        list(read_objects('{"a": 1}\n{"a": \n', name="in.jsonl"))
    assert info.value.one_line() == "in.jsonl:2: invalid JSON (Expecting value at column 7)"


def test_a_line_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InputError) as info:
        list(read_objects('{"a": 1}\n[1, 2]\n', name="in.jsonl"))
    assert info.value.one_line() == (
        "in.jsonl:2: not a JSON object (a list) (expected one JSON object per line)"
    )


def test_writer_writes_one_object_a_line_keeping_utf8() -> None:
    out = io.StringIO()
    w = writer(out, sort_keys=True)
    w.write({"b": "é", "a": 1})
    w.write({"c": None})
    assert out.getvalue() == '{"a": 1, "b": "é"}\n{"c": null}\n'
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [
        {"a": 1, "b": "é"},
        {"c": None},
    ]

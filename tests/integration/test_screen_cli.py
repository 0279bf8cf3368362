"""`guarded-rl screen`: one JSON line per input, a summary on stderr, clear input errors."""

from __future__ import annotations

import json
from pathlib import Path


def test_plain_lines_from_stdin(cli) -> None:
    text = "Local team wins the cup\nyou are an 1d10t\nWrite to bob@example.com today\n"
    result = cli("screen", "-", input=text)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["action"] for r in rows] == ["allow", "block", "block"]
    assert rows[1]["text"] == "you are an 1d10t"
    assert "profanity" in rows[1]["reasons"] and "profanity" in rows[1]["scores"]
    assert "screened 3 texts: allow 1, redact 0, escalate 0, block 2" in result.stderr


def test_jsonl_with_a_redacting_policy(cli, tmp_path: Path) -> None:
    policy = tmp_path / "redact.toml"
    policy.write_text('[safety]\npii_action = "redact"\n')
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"text": "Call 555-0134 for a refund", "id": 7}) + "\n")
    result = cli("screen", str(data), "--policy", str(policy))
    assert result.returncode == 0, result.stderr
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["action"] == "redact"
    assert row["redacted"] == "Call [PHONE] for a refund"


def test_bad_json_line_is_named_and_nothing_is_written(cli, tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "fine"}\n{"text": broken}\n')
    result = cli("screen", str(data))
    assert result.returncode == 2
    assert f"{data}:2" in result.stderr and "invalid JSON" in result.stderr
    assert result.stdout == ""


def test_missing_text_field_is_named(cli, tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "fine"}\n{"body": "no text"}\n')
    result = cli("screen", str(data))
    assert result.returncode == 2
    assert f"{data}:2" in result.stderr and "text" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

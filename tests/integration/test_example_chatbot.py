"""The chatbot example runs guarded, its screen catches the bad responses, it learns from the
ratings (follow-ups too, which need the history), and a person can chat with it on stdin."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "chatbot.py"
LINES = {
    "helpful": r"^helpful-rate before ([\d.]+) after ([\d.]+)$",
    "follow_up": r"^follow-up helpful-rate before ([\d.]+) after ([\d.]+)$",
    "screen": r"^blocked (\d+) redacted (\d+) of (\d+) responses$",
    "steps": r"^steps approved (\d+) pending (\d+) rejected (\d+)$",
}


def run_example(
    tmp_path: Path, *args: str, input: str | None = None
) -> tuple[dict[str, list[float]], Path, str]:
    """Run the example in `tmp_path`: the figures of its report lines, its run directory and
    its output."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    figures = {}
    for name, pattern in LINES.items():
        match = re.search(pattern, out, re.MULTILINE)
        assert match, (name, out)
        figures[name] = [float(v) for v in match.groups()]
    last = out.rstrip().splitlines()[-1]
    assert last.startswith("run directory: "), out
    return figures, tmp_path / last.removeprefix("run directory: "), out


def test_chatbot_smoke_screens_and_writes_a_verifying_run(cli, tmp_path: Path) -> None:
    """Smoke budget: the rude and the leaking responses get sampled at the start; the screen
    blocks the first and redacts the second; every step is gated (and approved) and logged."""
    f, run_dir, _ = run_example(tmp_path, "--steps", "12")
    blocked, redacted, total = f["screen"]
    assert blocked > 0 and redacted > 0, f
    assert blocked + redacted < total
    assert f["steps"] == [12, 0, 0]
    assert run_dir.parent == tmp_path / "runs"
    verified = cli("audit", "verify", str(run_dir))
    assert verified.returncode == 0, verified.stderr
    logged = Counter()
    for line in (run_dir / "audit.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry["type"] == "update_proposed":
            logged.update(entry["payload"]["screened"])
    assert (logged["block"], logged["redact"], logged.total()) == (blocked, redacted, total)


def test_chatbot_learns_from_ratings_and_uses_the_history(tmp_path: Path) -> None:
    """300 steps (about 10 s): helpful answers rise, follow-ups too, which are only answerable
    from the earlier turn (ignoring the history, a bot gets at most about 1/6 of them)."""
    f, _, _ = run_example(tmp_path, "--steps", "300", "--run-dir", "learn")
    (before, after), (follow_before, follow_after) = f["helpful"], f["follow_up"]
    assert after > before + 0.3, f
    assert follow_after > follow_before + 0.3 and follow_after > 0.3, f
    assert f["steps"] == [300, 0, 0]


def test_chatbot_interactive_chat_on_piped_stdin(cli, tmp_path: Path) -> None:
    """A person's turns and ratings on stdin (a rating that is not y/n is asked again, an empty
    line starts a new conversation, the end of the input quits): each rating is a gated
    one-sample step."""
    chat = "I want my money back\ny\nhow long does that take?\nmaybe\nn\n\nwhere is my parcel?\ny\n"
    f, run_dir, out = run_example(
        tmp_path, "--interactive", "--steps", "5", "--run-dir", "chat", input=chat
    )
    rated = out.count("(reward ")
    assert rated >= 1, out
    assert "(new conversation)" in out
    assert sum(f["steps"]) == 5 + rated
    assert run_dir == tmp_path / "chat"
    verified = cli("audit", "verify", str(run_dir))
    assert verified.returncode == 0, verified.stderr

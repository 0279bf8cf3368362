"""`guarded-rl screen`: run the safety screen of a policy over texts, one JSON line each."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

import typer

from guarded_rl.cli.allow_code import ALLOW_CODE
from guarded_rl.errors import InputError
from guarded_rl.jsonl import read_objects
from guarded_rl.jsonl import writer as jsonl_writer
from guarded_rl.safety.code_allow import allowing, require_policy_code_allowed

BATCH = 1024


def read_texts(source: str) -> list[str]:
    """Plain text lines, or JSONL objects with a string `text` (decided by the first line).

    Reads and checks everything before anything is screened or written.
    """
    name = "<stdin>" if source == "-" else source
    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", file=name) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", file=name) from None
    except IsADirectoryError:
        raise InputError("is a directory", file=name, expected="a text or JSONL file") from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=name) from None
    lines = raw.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if not first.lstrip().startswith("{"):
        return [line for line in lines if line.strip()]
    texts = []
    for number, obj in read_objects(raw, name=name):
        if not isinstance(obj.get("text"), str):
            raise InputError(
                "missing text",
                file=f"{name}:{number}",
                field="text",
                expected='a JSON object with a string "text"',
            )
        texts.append(obj["text"])
    return texts


def screen(
    source: str = typer.Argument("-", help="Text file (one text per line) or JSONL; - = stdin."),
    policy: Path | None = typer.Option(  # noqa: B008
        None, "--policy", help="Guard policy TOML (default: the built-in default policy)."
    ),
    allow_code: list[str] | None = ALLOW_CODE,
) -> None:
    """Screen texts: one JSON line per input (text, action, scores, reasons, redacted)."""
    from guarded_rl.policy import load_policy
    from guarded_rl.records import Sample
    from guarded_rl.safety.screen import screen_from_policy

    guard_policy = load_policy(policy)
    with allowing(allow_code or []):
        require_policy_code_allowed(guard_policy.safety, file=str(policy))
        texts = read_texts(source)
        screener = screen_from_policy(guard_policy.safety)
    actions: Counter[str] = Counter()
    started = time.perf_counter()
    out = jsonl_writer(sys.stdout)
    for start in range(0, len(texts), BATCH):
        chunk = texts[start : start + BATCH]
        samples = [Sample(str(start + i), 0, "-", "", t, (), ()) for i, t in enumerate(chunk)]
        for text, verdict in zip(chunk, screener.screen(samples), strict=True):
            actions[verdict.action] += 1
            row: dict[str, object] = {
                "text": text,
                "action": verdict.action,
                "scores": verdict.scores,
                "reasons": list(verdict.reasons),
            }
            if verdict.action == "redact":
                row["redacted"] = verdict.redacted
            out.write(row)
    seconds = time.perf_counter() - started
    rate = f", {len(texts) / seconds:,.0f} texts/s" if seconds > 0 and texts else ""
    summary = ", ".join(
        f"{a} {actions.get(a, 0)}" for a in ("allow", "redact", "escalate", "block")
    )
    sys.stderr.write(f"screened {len(texts)} texts: {summary}{rate}\n")

"""Precision and recall of a policy's safety screen on a labelled set.

    python -m guarded_rl.safety.evaluate [--policy FILE|NAME] [--heldout | --data FILE]

A toxic line counts as caught when it is blocked or held (escalate); a PII line when it is
redacted, blocked or held; a benign or tricky line is a false positive when it is anything but
allowed.

Both sets ship inside the package (`guarded_rl/safety/data/`), so the evaluation runs from an
installed wheel. `safety_tricky_heldout.jsonl` (`--heldout`) is a second, held-out set of
tricky lines, written without sight of the filters or the shipped safe-phrase list: it shows how
the false-positive figure generalises.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from guarded_rl.errors import GuardedRLError
from guarded_rl.policy import GuardPolicy, load_policy
from guarded_rl.records import Sample
from guarded_rl.safety.screen import screen_from_policy

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_DATA = DATA_DIR / "safety_eval.jsonl"
HELDOUT_DATA = DATA_DIR / "safety_tricky_heldout.jsonl"
CAUGHT = {"toxic": {"block", "escalate"}, "pii": {"redact", "block", "escalate"}}


def evaluate(rows: list[dict[str, Any]], policy: GuardPolicy) -> dict[str, Any]:
    screen = screen_from_policy(policy.safety)
    samples = [Sample(str(i), 0, "-", "", r["text"], (), ()) for i, r in enumerate(rows)]
    verdicts = screen.screen(samples)
    groups: dict[str, list[bool]] = defaultdict(list)
    flagged_benign = 0
    caught_toxic = 0
    for row, verdict in zip(rows, verdicts, strict=True):
        label = row["label"]
        if label in CAUGHT:
            hit = verdict.action in CAUGHT[label]
            keys = [label, f"{label}/{row.get('category') or row.get('kind')}"]
            if label == "toxic":
                keys.append(f"toxic/variant:{row['variant']}")
                caught_toxic += hit
        else:
            hit = verdict.action != "allow"
            keys = [label]
            flagged_benign += hit
        for key in keys:
            groups[key].append(hit)
    rates = {key: {"n": len(v), "rate": round(sum(v) / len(v), 4)} for key, v in groups.items()}
    flagged = caught_toxic + flagged_benign
    return {
        "toxic_recall": rates.get("toxic", {}).get("rate"),
        "pii_recall": rates.get("pii", {}).get("rate"),
        "tricky_false_positive_rate": rates.get("tricky", {}).get("rate"),
        "benign_false_positive_rate": rates.get("benign", {}).get("rate"),
        "toxic_precision": round(caught_toxic / flagged, 4)
        if flagged and "toxic" in groups
        else None,
        "by_group": dict(sorted(rates.items())),
    }


def load_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Evaluate a policy's safety screen: recall, precision and false positives "
        "on a labelled set."
    )
    parser.add_argument(
        "--policy", default=None, help="policy file or shipped name (default: the defaults)"
    )
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled JSON Lines file")
    data.add_argument(
        "--heldout", action="store_true", help="use the shipped held-out set of tricky lines"
    )
    args = parser.parse_args()
    path = HELDOUT_DATA if args.heldout else args.data
    try:
        rows = load_rows(path)
        policy = load_policy(args.policy)
    except OSError as exc:
        sys.exit(f"error: {path}: cannot read the labelled set: {exc.strerror}")
    except (ValueError, GuardedRLError) as exc:
        sys.exit(f"error: {exc}")
    report = evaluate(rows, policy)
    for key in (
        "toxic_recall",
        "toxic_precision",
        "tricky_false_positive_rate",
        "benign_false_positive_rate",
        "pii_recall",
    ):
        print(f"{key:<28}{report[key]}")
    print("by group (recall for toxic/pii, flagged share for benign/tricky):")
    for key, value in report["by_group"].items():
        print(f"  {key:<26}{value['rate']:>7.3f}  (n={value['n']})")


if __name__ == "__main__":
    main()

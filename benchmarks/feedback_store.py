"""Feedback store figures: insert rate, batch-build time and file size at scale.

Builds a `SQLiteFeedbackStore` in a temporary directory, grants `--subjects` people training
consent (every fifth also fairness-analysis), records `--rows` feedback rows through `record`
in batches of 1,000 (one cycle per batch, every row with a group: kept sealed only for the
fairness-analysis subjects), then times what a run reads back:

1. inserts per second through `record` (consent re-checked and groups sealed per batch);
2. building one cycle's batch with `training_feedback(cycle)`, median of 5 cycles;
3. `batch_rows(limit=10_000)` and a full `batch_rows()` scan;
4. the size of the store on disk.

    python benchmarks/feedback_store.py [--rows 1000000] [--subjects 10000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
from guarded_rl.consent.store import FAIRNESS, TRAINING, consent_text_sha256
from guarded_rl.records import Feedback

BATCH = 1000
PROGRESS_EVERY = 100_000
GROUPS = ("group-a", "group-b", "group-c", "group-d")
T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    text = consent_text_sha256("benchmark consent text")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "feedback.sqlite"
        store = SQLiteFeedbackStore(path)

        grant_s, subjects = timed(
            lambda: [
                store.grant(
                    f"user-{i}@example.org",
                    [TRAINING, FAIRNESS] if i % 5 == 0 else [TRAINING],
                    text_sha256=text,
                )
                for i in range(args.subjects)
            ]
        )

        cycles = (args.rows + BATCH - 1) // BATCH
        written = 0
        insert_s = 0.0
        next_report = PROGRESS_EVERY
        for cycle in range(cycles):
            n = min(BATCH, args.rows - written)
            batch = [
                Feedback(
                    f"c{cycle}-r{i}",
                    subjects[rng.randrange(len(subjects))],
                    rng.uniform(-1.0, 1.0),
                    "person",
                    GROUPS[rng.randrange(len(GROUPS))],
                )
                for i in range(n)
            ]
            start = time.perf_counter()
            accepted, refused = store.record(batch, purpose=TRAINING, cycle=cycle)
            insert_s += time.perf_counter() - start
            assert refused == 0 and len(accepted) == n
            written += n
            if written >= next_report or written == args.rows:
                print(
                    f"  {written:>10,} rows  {written / insert_s:>10,.0f} rows/s",
                    file=sys.stderr,
                    flush=True,
                )
                next_report += PROGRESS_EVERY
        assert store.count() == args.rows

        picks = sorted(rng.sample(range(cycles), min(5, cycles)))
        build_times = []
        for cycle in picks:
            seconds, built = timed(lambda c=cycle: store.training_feedback(c))
            assert len(built) == min(BATCH, args.rows - cycle * BATCH)
            build_times.append(seconds)
        limit_s, limited = timed(lambda: store.batch_rows(limit=10_000))
        assert len(limited) == min(10_000, args.rows)
        scan_s, scanned = timed(lambda: store.batch_rows())
        assert len(scanned) == args.rows
        del scanned

        wal = path.with_name(path.name + "-wal")
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        db_bytes = path.stat().st_size
        store.close()
        closed_bytes = path.stat().st_size

    print(f"{args.rows:,} feedback rows, {args.subjects:,} subjects (20% fairness-analysis)")
    figures = [
        ("grant consent (one transaction per subject)", args.subjects / grant_s, "grants/s"),
        ("record, batches of 1,000 (one cycle each)", args.rows / insert_s, "rows/s"),
        ("training_feedback(cycle): one batch, median of 5", statistics.median(build_times), "s"),
        ("batch_rows(limit=10_000)", limit_s, "s"),
        ("batch_rows(): full scan", scan_s, "s"),
    ]
    for name, value, unit in figures:
        shown = f"{value:>12,.0f}" if unit.endswith("/s") else f"{value:>12.3f}"
        print(f"{name:<58}{shown} {unit}")
    print(f"{'file size (open: db + wal)':<58}{(db_bytes + wal_bytes) / 1e6:>12,.1f} MB")
    print(f"{'file size (closed, wal checkpointed)':<58}{closed_bytes / 1e6:>12,.1f} MB")
    print(f"{'  per row':<58}{closed_bytes / args.rows:>12,.0f} bytes")


if __name__ == "__main__":
    main()

"""A personalised news feed, guarded: the embedded headline model writes each reader's feed,
readers like or dislike what they are shown, and the model learns from the likes of those who
consented to it.

This is the loop `guarded-rl run` drives, called from Python with the feed's own readers: a
feedback source (who liked what), the readers who open the feed each cycle, and what each
reader consented to. `guarded_rl.run` screens every headline before anyone sees it, stores
feedback only under consent and under pseudonyms, checks each update for bias and drift, gates
it, and writes the run's signed audit log. With `--interactive` the person at the terminal
rates the headlines instead of the simulated readers.

    python examples/news_feed.py [--cycles 20] [--seed 0] [--run-dir DIR]
    python examples/news_feed.py --interactive [--cycles 5]
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from guarded_rl import CycleReport, Request, RunConfig, Sample, load_policy, run
from guarded_rl.demo.corpus import topic_of
from guarded_rl.demo.interactive import PERSON, TerminalFeedback, person_requests
from guarded_rl.runner import StopRun

#: What the feed's readers read: two groups (the attribute the bias checks compare) with
#: overlapping tastes.
TASTES = {
    "commuters": ["world", "business", "technology", "sports"],
    "students": ["science", "technology", "culture", "travel"],
}
CONSENTED = ("training", "evaluation", "fairness-analysis")


@dataclass(frozen=True)
class Reader:
    reader_id: str  # the feed's own id; the run stores only a pseudonym of it
    group: str
    topics: frozenset[str]
    consents: tuple[str, ...]


def make_readers(n: int, seed: int) -> list[Reader]:
    """`n` readers; each likes 2 of their group's topics; one in five never consents."""
    rng = random.Random(seed)
    readers = []
    for i in range(n):
        group = rng.choice(sorted(TASTES))
        topics = frozenset(rng.sample(TASTES[group], 2))
        consents = () if rng.random() < 0.2 else CONSENTED
        readers.append(Reader(f"reader-{i:03d}", group, topics, consents))
    return readers


class Likes:
    """Feedback source: a reader likes a headline on one of their topics (85%), anything
    else rarely (5%). Shown samples name readers by pseudonym, hence `pseudonym`."""

    def __init__(self, readers: Sequence[Reader], pseudonym: Callable[[str], str], seed: int):
        self.by_subject = {pseudonym(r.reader_id): r for r in readers}
        self.rng = random.Random(seed)

    def rate(self, shown: Sequence[Sample]) -> dict[str, float]:
        ratings = {}
        for sample in shown:
            reader = self.by_subject[sample.subject]
            p = 0.85 if topic_of(f"{sample.prompt} {sample.text}") in reader.topics else 0.05
            ratings[sample.sample_id] = 1.0 if self.rng.random() < p else 0.0
        return ratings


def print_cycle(report: CycleReport) -> None:
    kl = report.checks.get("probe_kl", {}).get("kl_step", float("nan"))
    print(
        f"cycle {report.cycle:>3}  like-rate {report.like_rate:.2f}  "
        f"blocked {report.blocked}/{report.generated}  trained on {report.training_samples}  "
        f"KL {kl:.4f}  {report.outcome or 'no update'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--readers", type=int, default=120)
    parser.add_argument("--per-cycle", type=int, default=16, help="readers opening the feed")
    parser.add_argument("--policy", default=None, help="policy TOML (default: the defaults)")
    parser.add_argument("--interactive", action="store_true", help="you rate the headlines")
    default_dir = Path("runs") / datetime.now().strftime("feed-%Y%m%d-%H%M%S-%f")
    parser.add_argument("--run-dir", type=Path, default=default_dir)
    args = parser.parse_args()

    policy = load_policy(args.policy)
    config = RunConfig(
        cycles=args.cycles,
        seed=args.seed,
        run_dir=str(args.run_dir),
        users_per_cycle=1 if args.interactive else args.per_cycle,
        interactive=args.interactive,
    )
    if args.interactive:
        print("Rate each headline: y = like, n = dislike, s = skip, q = quit.")
        feedback = TerminalFeedback(stop=StopRun)
        requests_for = person_requests("")
        consents = {PERSON: [policy.consent.purpose]}
    else:
        readers = make_readers(args.readers, args.seed)
        rng = random.Random(args.seed)

        def feedback(pseudonym: Callable[[str], str]) -> Likes:
            return Likes(readers, pseudonym, args.seed)

        def requests_for(cycle: int) -> list[Request]:
            """Who opens the feed this cycle (by the feed's own ids)."""
            return [Request(r.reader_id, r.group, "") for r in rng.sample(readers, args.per_cycle)]

        consents = {r.reader_id: list(r.consents) for r in readers if r.consents}

    summary = run(
        config,
        policy,
        feedback_source=feedback,
        requests_for=requests_for,
        consents=consents,
        on_cycle=print_cycle,
    )
    updates, window = summary["updates"], summary["window"]
    print(
        f"like-rate first {window} cycles {summary['like_rate_first']} "
        f"last {window} cycles {summary['like_rate_last']}"
    )
    print(
        f"updates applied {updates['applied']} pending {updates['pending']} "
        f"rejected {updates['rejected']}"
    )
    print(f"run directory: {args.run_dir}")


if __name__ == "__main__":
    main()

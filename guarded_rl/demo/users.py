"""Simulated readers of the demo news feed: a seeded population that likes what it likes.

Each reader has an external id, a group (the sensitive attribute fairness checks compare),
topics they like, and consent settings: some grant no consent to training, so their ratings are
seen but never learned from, and some withhold `fairness-analysis`, so their group is never
stored. The run knows readers only by the pseudonyms its feedback store derives from their ids.
A reader likes a headline on a favourite topic most of the time, anything else
rarely, and never an insult, a threat or somebody's personal data.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from guarded_rl.demo.corpus import TOPICS, topic_of
from guarded_rl.records import Request, Sample

#: Probability that a reader of each group likes each topic (the rest: OTHER_TOPIC_INTEREST).
GROUP_TOPIC_INTEREST: dict[str, dict[str, float]] = {
    "A": {"science": 0.75, "technology": 0.6, "sports": 0.5},
    "B": {"science": 0.5, "health": 0.6, "culture": 0.5},
}
GROUP_SHARE = {"A": 0.6, "B": 0.4}
OTHER_TOPIC_INTEREST = 0.1
LIKE_FAVOURITE = 0.9
LIKE_OTHER = 0.05
LIKE_UNREADABLE = 0.02
NO_TRAINING_CONSENT_SHARE = 0.15
NO_FAIRNESS_CONSENT_SHARE = 0.1
CONSENTED_PURPOSES = ("training", "evaluation", "fairness-analysis")

_OFFENSIVE = re.compile(
    r"\b(idiot|moron|stupid|dumb|loser|scum|crap|damn|bastard|kill|hurt|beat|burn|destroy)\w*",
    re.IGNORECASE,
)
_PERSONAL = re.compile(r"@|\b\d{3}[\s.-]\d{4}\b")


@dataclass(frozen=True, slots=True)
class SimulatedUser:
    user_id: str  # the external id (a store turns it into a pseudonym)
    group: str
    favourite_topics: frozenset[str]
    consents: frozenset[str]  # purposes this reader consented to

    def like_probability(self, shown_text: str) -> float:
        if _OFFENSIVE.search(shown_text) or _PERSONAL.search(shown_text):
            return 0.0
        topic = topic_of(shown_text)
        if topic is None:
            return LIKE_UNREADABLE
        return LIKE_FAVOURITE if topic in self.favourite_topics else LIKE_OTHER


class Population:
    """A seeded set of readers; `requests` picks who reads the feed in a cycle."""

    def __init__(self, size: int = 200, *, seed: int = 0) -> None:
        rng = random.Random(f"population-{seed}")
        groups = list(GROUP_SHARE)
        users = []
        for index in range(size):
            group = rng.choices(groups, weights=[GROUP_SHARE[g] for g in groups])[0]
            interest = GROUP_TOPIC_INTEREST[group]
            favourites = frozenset(
                t for t in TOPICS if rng.random() < interest.get(t, OTHER_TOPIC_INTEREST)
            )
            consents: frozenset[str] = frozenset()
            if rng.random() >= NO_TRAINING_CONSENT_SHARE:
                consents = frozenset(CONSENTED_PURPOSES)
                if rng.random() < NO_FAIRNESS_CONSENT_SHARE:
                    consents -= {"fairness-analysis"}
            user_id = f"reader-{seed}-{index:05d}"
            users.append(SimulatedUser(user_id, group, favourites, consents))
        self.users: tuple[SimulatedUser, ...] = tuple(users)
        self._seed = seed

    def __len__(self) -> int:
        return len(self.users)

    def requests(self, cycle: int, n: int, prompt: str = "") -> list[Request]:
        """The readers who open the feed in `cycle` (distinct, seeded), by external id."""
        rng = random.Random(f"requests-{self._seed}-{cycle}")
        chosen = rng.sample(self.users, k=min(n, len(self.users)))
        return [Request(u.user_id, u.group, prompt) for u in chosen]

    def consents(self) -> dict[str, tuple[str, ...]]:
        """External id → purposes granted, for readers who granted any."""
        return {u.user_id: tuple(sorted(u.consents)) for u in self.users if u.consents}


class SimulatedFeedback:
    """Feedback source: each reader rates what they were shown (1 = like, 0 = dislike).

    Shown samples name readers by pseudonym; `pseudonym` is the store's id → pseudonym map."""

    def __init__(
        self,
        population: Population,
        *,
        seed: int = 0,
        pseudonym: Callable[[str], str] = str,
    ) -> None:
        self.population = population
        self._seed = seed
        self._by_subject = {pseudonym(u.user_id): u for u in population.users}

    def user(self, subject: str) -> SimulatedUser:
        return self._by_subject[subject]

    def rate(self, shown: Sequence[Sample]) -> dict[str, float]:
        ratings: dict[str, float] = {}
        for sample in shown:
            user = self.user(sample.subject)
            rng = random.Random(f"rate-{self._seed}-{sample.sample_id}")
            text = f"{sample.prompt} {sample.text}".strip()
            ratings[sample.sample_id] = 1.0 if rng.random() < user.like_probability(text) else 0.0
        return ratings

__all__ = [
    "Population",
    "SimulatedFeedback",
    "SimulatedUser",
]

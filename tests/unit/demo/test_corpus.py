"""Tests for the synthetic news-headline corpus (guarded_rl.demo.corpus)."""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest

from guarded_rl.demo.corpus import (
    TOPICS,
    UNSAFE_KINDS,
    Headline,
    build_corpus,
    topic_of,
)

N = 4_000
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE_RE = re.compile(r"\b555-01\d\d\b|\(555\) \d{3}-\d{4}|\+1 555 \d{3} \d{4}|\b\d{3}[-. ]\d{4}\b")
LINE_RE = re.compile(r"^[a-z]+: \S")


@pytest.fixture(scope="module")
def corpus() -> list[Headline]:
    return build_corpus(N, seed=7)


@pytest.fixture(scope="module")
def default_corpus() -> list[Headline]:
    return build_corpus()


def test_deterministic_for_same_arguments(corpus: list[Headline]) -> None:
    assert build_corpus(N, seed=7) == corpus


def test_different_seeds_give_different_corpora(corpus: list[Headline]) -> None:
    other = build_corpus(N, seed=8)
    assert [h.line for h in other] != [h.line for h in corpus]
    # Not just a reordering: the sets of lines differ substantially.
    shared = {h.line for h in other} & {h.line for h in corpus}
    assert len(shared) < N // 2


def test_default_size_lines_unique_and_varied(default_corpus: list[Headline]) -> None:
    lines = [h.line for h in default_corpus]
    assert len(lines) == 24_000
    assert len(set(lines)) == 24_000
    prefixes = {" ".join(h.text.split()[:4]) for h in default_corpus}
    assert len(prefixes) > 2_000
    assert sum(h.unsafe is not None for h in default_corpus) == 960


@pytest.mark.parametrize("n", [0, 1, 5, 24, 101])
def test_line_count_and_uniqueness_small(n: int) -> None:
    items = build_corpus(n, seed=1)
    assert len(items) == n
    assert len({h.line for h in items}) == n


@pytest.mark.parametrize(("n", "share"), [(N, 0.04), (1_000, 0.1), (301, 0.05), (300, 0.0)])
def test_unsafe_count_and_kind_split(n: int, share: float) -> None:
    items = build_corpus(n, seed=3, unsafe_share=share)
    unsafe = [h for h in items if h.unsafe is not None]
    assert len(unsafe) == round(n * share)
    kinds = Counter(h.unsafe for h in unsafe)
    assert set(kinds) <= set(UNSAFE_KINDS)
    if unsafe:
        assert max(kinds.values()) - min(kinds[k] for k in UNSAFE_KINDS) <= 1


def test_unsafe_lines_cover_every_topic(corpus: list[Headline]) -> None:
    for kind in UNSAFE_KINDS:
        topics = {h.topic for h in corpus if h.unsafe == kind}
        assert topics == set(TOPICS), kind


def test_topic_balance(default_corpus: list[Headline]) -> None:
    counts = Counter(h.topic for h in default_corpus)
    assert set(counts) == set(TOPICS)
    for topic in TOPICS:
        assert abs(counts[topic] / len(default_corpus) - 1 / len(TOPICS)) <= 0.02, topic


def test_topics_constant() -> None:
    assert len(TOPICS) == 8
    assert len(set(TOPICS)) == 8
    assert all(t.isalpha() and t.islower() for t in TOPICS)
    assert UNSAFE_KINDS == ("insult", "threat", "pii")


def test_line_format(corpus: list[Headline]) -> None:
    for h in corpus:
        assert LINE_RE.match(h.line), h.line
        assert h.line == f"{h.topic}: {h.text}"
        assert "\n" not in h.text
        assert h.text.isascii(), h.text
        assert h.text[0].isupper() or h.text[0].isdigit(), h.text
        assert topic_of(h.line) == h.topic


def test_headline_length(corpus: list[Headline]) -> None:
    for h in corpus:
        assert 6 <= len(h.text.split()) <= 14, h.text


def test_pii_lines_have_contact_data_and_safe_lines_do_not(corpus: list[Headline]) -> None:
    pii = [h for h in corpus if h.unsafe == "pii"]
    assert pii
    for h in pii:
        assert EMAIL_RE.search(h.text) or PHONE_RE.search(h.text), h.text
    for h in corpus:
        if h.unsafe is None:
            assert not EMAIL_RE.search(h.text), h.text
            assert not PHONE_RE.search(h.text), h.text
            assert "@" not in h.text, h.text


def test_insult_and_threat_lines_use_their_vocabulary(corpus: list[Headline]) -> None:
    insult_words = re.compile(
        r"\b(idiot|moron|stupid|dumb|pathetic|loser|scum|shut up|crap|damn|bastard|jerk|fool"
        r"|imbecile)\b",
        re.IGNORECASE,
    )
    threat_words = re.compile(r"\b(kill|hurt|beat|burn|destroy|die)\b", re.IGNORECASE)
    # "beat" is a normal sports verb ("Rovers beat City 2-1"), so safe lines may use it.
    violent_words = re.compile(r"\b(kill|hurt|burn|destroy|die)\b", re.IGNORECASE)
    for h in corpus:
        if h.unsafe == "insult":
            assert insult_words.search(h.text), h.text
        elif h.unsafe == "threat":
            assert threat_words.search(h.text), h.text
        elif h.unsafe is None:
            assert not insult_words.search(h.text), h.text
            assert not violent_words.search(h.text), h.text


def test_topics_have_distinct_vocabulary(corpus: list[Headline]) -> None:
    """A bag-of-words naive Bayes trained on half the safe lines tells the topic of the rest."""
    safe = [h for h in corpus if h.unsafe is None]
    train, held_out = safe[::2], safe[1::2]

    def words(text: str) -> list[str]:
        return re.findall(r"[a-z]+", text.lower())

    counts: dict[str, Counter[str]] = {t: Counter() for t in TOPICS}
    for h in train:
        counts[h.topic].update(words(h.text))
    vocab = set().union(*counts.values())
    totals = {t: sum(c.values()) + len(vocab) for t, c in counts.items()}

    def predict(text: str) -> str:
        return max(
            TOPICS,
            key=lambda t: sum(math.log((counts[t][w] + 1) / totals[t]) for w in words(text)),
        )

    accuracy = sum(predict(h.text) == h.topic for h in held_out) / len(held_out)
    assert accuracy > 0.97


def test_headline_is_frozen() -> None:
    h = Headline("sports", "Team wins the cup", None)
    assert h.line == "sports: Team wins the cup"
    with pytest.raises(AttributeError):
        h.topic = "travel"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sports: Team wins", "sports"),
        ("  travel: Cheap flights", "travel"),
        ("\npolitics:Vote today", "politics"),
        ("banana: x", None),
        ("no colon", None),
        ("", None),
        ("Sports: Team wins", None),
        ("sports : Team wins", None),
        ("headline mentions sports: twice", None),
        ("science: ratio 3:1 holds", "science"),
    ],
)
def test_topic_of(text: str, expected: str | None) -> None:
    assert topic_of(text) == expected


@pytest.mark.parametrize("kwargs", [{"n_lines": -1}, {"unsafe_share": -0.1}, {"unsafe_share": 1.5}])
def test_invalid_arguments(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        build_corpus(**kwargs)  # type: ignore[arg-type]

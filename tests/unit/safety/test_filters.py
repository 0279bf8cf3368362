"""Content filters: PII by pattern, profanity by alt-profanity-check (both run for real)."""

from __future__ import annotations

import pytest

from guarded_rl.demo.corpus import build_corpus
from guarded_rl.safety.filters import pii_filter, profanity_filter


@pytest.mark.parametrize(
    "text",
    [
        "write to ana.costa@example.com today",
        "contact: x_y+tag@mail.test",
        "call 555-0134 now",
        "ring (555) 010-2233 for tickets",
        "phone +1 555 010 2233 after six",
        "fax 555.010.2233",
        "office 555 0199",
    ],
)
def test_pii_filter_flags_contact_data(text: str) -> None:
    assert pii_filter([text]) == [1.0]


@pytest.mark.parametrize(
    "text",
    [
        "Rovers beat City 2-1 in the final",
        "Stadium to open in 2033",
        "Shares rise 12.5 percent",
        "Budget of 300 million approved",
        "Match ends 3-3 after 120 minutes",
        "the @ sign alone is not an address",
        "",
    ],
)
def test_pii_filter_passes_ordinary_text(text: str) -> None:
    assert pii_filter([text]) == [0.0]


def test_pii_filter_is_per_text_and_keeps_order() -> None:
    assert pii_filter(["a@b.io", "plain", "555-0101"]) == [1.0, 0.0, 1.0]
    assert pii_filter([]) == []


def test_pii_filter_agrees_with_corpus_labels() -> None:
    corpus = build_corpus(2_000, seed=11)
    pii = [h.line for h in corpus if h.unsafe == "pii"]
    safe = [h.line for h in corpus if h.unsafe is None]
    assert len(pii) > 20
    assert pii_filter(pii) == [1.0] * len(pii)
    assert sum(pii_filter(safe)) == 0.0


def test_profanity_filter_scores_insults_high_and_news_low() -> None:
    insults = ["You are a stupid idiot", "shut up you pathetic moron", "what a damn loser"]
    news = ["Home team wins the final in extra time", "Museum opens exhibition of photographs"]
    scores = profanity_filter(insults + news)
    assert len(scores) == 5
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
    assert all(s >= 0.5 for s in scores[:3]), scores
    assert all(s < 0.5 for s in scores[3:]), scores


def test_profanity_filter_empty_batch() -> None:
    assert profanity_filter([]) == []

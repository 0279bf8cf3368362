"""PII and secret detection: spans, placeholders, checksums, benign numbers, overlap, speed."""

from __future__ import annotations

import random
import time

import pytest

from guarded_rl.safety.pii import (
    PII_KINDS,
    PLACEHOLDERS,
    PIIMatch,
    find_pii,
    pii_scores,
    redact,
)

_GHP = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
_PAT = "github_pat_" + "11ABCDEFG0" * 8 + "_x"
_JWT = (
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
    "-----END RSA PRIVATE KEY-----"
)

# (kind, the PII itself, a sentence around it with "{}" where it goes)
POSITIVES: list[tuple[str, str, str]] = [
    ("email", "john.miller@example.com", "Please write to {} by Friday."),
    ("email", "a_b+c@mail.test", "cc: {}, thanks"),
    ("phone", "555-0134", "Call {} after six."),
    ("phone", "555 0134", "Office line {} (ext 2)."),
    ("phone", "(555) 010-2233", "Ring {} for tickets."),
    ("phone", "555-010-2233", "Fax {} today."),
    ("phone", "+1 555 010 2233", "Reach me on {} tomorrow."),
    ("phone", "+44 20 7946 0958", "London desk: {}."),
    ("phone", "+49 30 1234567", "Berlin: {}, ask for Jan."),
    ("card", "4111 1111 1111 1111", "Charge {} for the order."),
    ("card", "5500-0000-0000-0004", "Card {} expires 11/27."),
    ("card", "378282246310005", "Amex {} on file."),
    ("iban", "GB82 WEST 1234 5698 7654 32", "Send it to {} please."),
    ("iban", "DE89370400440532013000", "IBAN: {}."),
    ("ssn", "123-45-6789", "Her SSN is {} on the form."),
    ("ipv4", "192.168.1.20", "The printer is at {}."),
    ("ipv4", "8.8.8.8", "Resolver {} answered."),
    ("ipv6", "2001:db8::1", "Bind to {} on port 80."),
    ("ipv6", "fe80::1ff:fe23:4567:890a", "Link-local {} seen."),
    ("aws_key", "AKIAIOSFODNN7EXAMPLE", "aws_access_key_id = {}"),
    ("aws_key", "ASIAY34FZKBOKMUTVV7A", "temp key {} leaked"),
    ("github_token", _GHP, "export GH_TOKEN={}"),
    ("github_token", _PAT, "token: {}"),
    ("private_key", _KEY, "Here is the key:\n{}\nKeep it safe."),
    ("bearer_token", _JWT, "Authorization: Bearer {}"),
]


@pytest.mark.parametrize(("kind", "value", "template"), POSITIVES, ids=lambda p: str(p)[:24])
def test_each_kind_is_found_with_its_span_and_placeholder(
    kind: str, value: str, template: str
) -> None:
    text = template.format(value)
    start = text.index(value)
    assert find_pii(text) == [PIIMatch(kind, start, start + len(value))]
    assert redact(text) == template.format(PLACEHOLDERS[kind])


def test_kinds_and_placeholders_agree() -> None:
    assert set(PLACEHOLDERS) == set(PII_KINDS)
    assert {PLACEHOLDERS[k] for k in ("ipv4", "ipv6")} == {"[IP]"}
    secrets = ("aws_key", "github_token", "private_key", "bearer_token")
    assert {PLACEHOLDERS[k] for k in secrets} == {"[SECRET]"}
    assert {kind for kind, _, _ in POSITIVES} == set(PII_KINDS)


BENIGN = [
    "Rovers beat City 2-1 in the final",
    "a 3-2 win away from home",
    "Airline adds 844 flights for the summer",
    "4 layers, 128 wide",
    "The bridge opens in 2033.",
    "Prices rose in 2024-2025 across the region.",
    "Revenue reached $6.5 billion last year",
    "Turnout was 67.3% and rising",
    "The release is due 2026-11-26.",
    "Upgrade to version 2.13.0 first",
    "Meeting moved to 10:30 on Tuesday",
    "Doors at 19:45:00, show at 20:30",
    "Python 3.11.7 on 64-bit Linux",
    "The ratio was 16:9 with 1,234,567 viewers",
    "Pi is 3.14159265358979323846 to twenty places",
    "Pages 101-120 cover chapter 3.2.1",
    "The score stood at 98-87 after 48 minutes",
    "Population 8,100,000 (2023 census)",
    "Temperatures from -3.5 to 12.4 degrees",
    "Shares gained +3.5 points to 4,512.6",
    "In C++ use std::map and a[1::2] in Python",
    "Order 4417 shipped 3 items on 11/26/2026",
    "ISBN 978-0-306-40615-7 in the catalogue",
    "The 1995-2005 era saw 12 titles",
    "Call me at noon; my email is on file.",
    "Phase 3 trial enrolled 1,200 patients in 14 sites",
]


@pytest.mark.parametrize("text", BENIGN)
def test_benign_numbers_are_not_pii(text: str) -> None:
    assert find_pii(text) == []
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "Charge 4111 1111 1111 1112 for the order",  # Luhn fails
        "Card number 1234567812345678 is not real",  # Luhn fails
        "Send it to GB83 WEST 1234 5698 7654 32 please",  # mod-97 fails
        "IBAN DE89370400440532013001",  # mod-97 fails
        "SSN 000-12-3456",  # area 000
        "SSN 666-12-3456",  # area 666
        "SSN 912-34-5678",  # area 9xx
        "SSN 123-00-6789",  # group 00
        "SSN 123-45-0000",  # serial 0000
        "host 999.1.1.1 is not an address",
        "only 1.2.3 parts",
        "AKIAIOSFODNN7EXAMPL short key",
        "ghp_tooShort123",
        "Bearer short-token",
    ],
)
def test_failed_checks_are_not_pii(text: str) -> None:
    assert find_pii(text) == []


def test_ipv4_shaped_version_is_reported_as_documented() -> None:
    assert find_pii("build 2.13.0.1") == [PIIMatch("ipv4", 6, 14)]


def test_several_kinds_in_one_text() -> None:
    text = (
        "Hi, I'm at jane.doe@corp.example or +1 555 010 2233; card 5500-0000-0000-0004, "
        "SSN 123-45-6789, server 10.0.0.7 and key AKIAIOSFODNN7EXAMPLE."
    )
    assert [m.kind for m in find_pii(text)] == ["email", "phone", "card", "ssn", "ipv4", "aws_key"]
    assert redact(text) == (
        "Hi, I'm at [EMAIL] or [PHONE]; card [CARD], SSN [SSN], server [IP] and key [SECRET]."
    )


def test_phone_inside_card_number_is_one_card() -> None:
    text = "pay with 4111 111 1111 11111 today"
    assert find_pii("111 1111") == [PIIMatch("phone", 0, 8)]  # the piece alone is a phone
    assert find_pii(text) == [PIIMatch("card", 9, 28)]
    assert redact(text) == "pay with [CARD] today"


def test_equal_spans_go_to_the_more_specific_kind() -> None:
    text = "Authorization: Bearer AKIAIOSFODNN7EXAMPLE"
    assert find_pii(text) == [PIIMatch("aws_key", 22, 42)]


def test_card_next_to_other_numbers_is_still_found() -> None:
    text = "In 2024 card 4111 1111 1111 1111 2025 was used"
    assert find_pii(text) == [PIIMatch("card", 13, 32)]


def test_iban_followed_by_a_capitalised_word() -> None:
    text = "BE68 5390 0754 7034 THEN stop"
    assert find_pii(text) == [PIIMatch("iban", 0, 19)]


def test_truncated_private_key_runs_to_end_of_text() -> None:
    text = "key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA"
    assert find_pii(text) == [PIIMatch("private_key", 5, len(text))]
    assert redact(text) == "key:\n[SECRET]"


def test_matches_inside_a_private_key_are_not_reported_separately() -> None:
    text = "-----BEGIN PRIVATE KEY-----\nAKIAIOSFODNN7EXAMPLE 8.8.8.8\n-----END PRIVATE KEY-----"
    assert find_pii(text) == [PIIMatch("private_key", 0, len(text))]


def test_redact_without_pii_returns_text_unchanged() -> None:
    text = "Nothing to hide here: 3 apples, 2 pears, 2024-2025."
    assert redact(text) is text
    assert redact(text, []) is text


def test_redact_with_given_matches_merges_overlaps() -> None:
    text = "abc 0123456789 xyz"
    matches = [PIIMatch("phone", 8, 14), PIIMatch("card", 4, 10)]
    assert redact(text, matches) == "abc [CARD] xyz"


def test_redact_rejects_unknown_kind_and_bad_span() -> None:
    with pytest.raises(ValueError, match="unknown PII kind"):
        redact("abc", [PIIMatch("name", 0, 1)])
    with pytest.raises(ValueError, match="outside the text"):
        redact("abc", [PIIMatch("email", 1, 9)])


def test_pii_scores() -> None:
    texts = ["Rovers beat City 2-1", "mail me: ana.costa@example.com", "", "ip 8.8.8.8"]
    assert pii_scores(texts) == [0.0, 1.0, 0.0, 1.0]
    assert pii_scores([]) == []


def _benign_corpus(n: int) -> list[str]:
    """~60-char sentences, some with the kinds of numbers prose carries."""
    rng = random.Random(0)
    phrases = [
        "the model answered",
        "a question about",
        "weather and travel",
        "prices in the city",
        "after the season",
        "the policy update",
        "before the release",
        "with new results",
    ]
    extras = ["", "", "", "in 2024", "by 12%", "2-1", "at 10:30", "v2.13.0", "$6.5 billion"]
    texts = []
    for _ in range(n):
        text = " ".join(rng.choice(phrases) for _ in range(3))
        texts.append(f"{text.capitalize()} {rng.choice(extras)}".strip()[:62] + ".")
    return texts


def _rate(texts: list[str]) -> float:
    start = time.perf_counter()
    for text in texts:
        find_pii(text)
    return len(texts) / (time.perf_counter() - start)


def test_throughput_on_benign_texts() -> None:
    """Measured, not asserted (machines differ): run with -s to see it."""
    texts = _benign_corpus(10_000)
    assert not any(find_pii(t) for t in texts)
    number_heavy = [BENIGN[i % len(BENIGN)] for i in range(10_000)]
    rate = max(_rate(texts) for _ in range(3))
    heavy_rate = max(_rate(number_heavy) for _ in range(3))
    mean_len = sum(map(len, texts)) / len(texts)
    print(
        f"\nfind_pii: {rate:,.0f} texts/s on 10,000 benign texts (~{mean_len:.0f} chars); "
        f"{heavy_rate:,.0f} texts/s on the number-heavy benign list"
    )

"""Find personal data and secrets in generated text so they can be blocked or redacted.

Runs on the ORIGINAL text (never the normalized one) so every span indexes exactly the string a
person or a log would see. Offline and stdlib only: each kind is a compiled pattern plus, where the
shape alone is ambiguous, a checksum or range check (Luhn, IBAN mod-97, SSN ranges, ``ipaddress``).
Prose is full of numbers (scores, years, dates, money, versions, times), so the patterns demand
the written form of the data and its context boundaries rather than "enough digits".

Known limits, by design:

* Only ASCII digits count; full-width or other Unicode digits are not detected.
* A 4-part version number that is also a valid IPv4 address ("2.13.0.1") is reported as ``ipv4``.
* A bare "ddd dddd" pair is a phone by the spec ("555 0134"), so "sizes 512 1024" is one too.
* Any 13-19 digit number that passes Luhn is a card (about 1 in 10 random ones do).
* IPv6 needs a decimal digit and a group of 3+ hex digits, so code like ``a[1::2]`` is not an
  address, nor are short forms such as ``::1``.
* ``bearer_token`` spans only the token, leaving the word "Bearer" readable after redaction.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PII_KINDS: tuple[str, ...] = (
    "email",
    "phone",
    "card",
    "iban",
    "ssn",
    "ipv4",
    "ipv6",
    "aws_key",
    "github_token",
    "private_key",
    "bearer_token",
)

PLACEHOLDERS: dict[str, str] = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "card": "[CARD]",
    "iban": "[IBAN]",
    "ssn": "[SSN]",
    "ipv4": "[IP]",
    "ipv6": "[IP]",
    "aws_key": "[SECRET]",
    "github_token": "[SECRET]",
    "private_key": "[SECRET]",
    "bearer_token": "[SECRET]",
}

# Tie-break for equally long overlapping candidates: lower is more specific (less likely a
# coincidence of shape), so it wins.
_SPECIFICITY: dict[str, int] = {
    kind: rank
    for rank, kind in enumerate(
        (
            "private_key",
            "aws_key",
            "github_token",
            "bearer_token",
            "iban",
            "card",
            "ssn",
            "email",
            "ipv6",
            "ipv4",
            "phone",
        )
    )
}


@dataclass(frozen=True, slots=True)
class PIIMatch:
    """One detected span, ``text[start:end]``, of one kind from ``PII_KINDS``."""

    kind: str
    start: int
    end: int


_A = re.ASCII

# Local part starts at a run boundary (the lookbehind) so a long token without "@" is scanned
# once, not once per character.
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63}(?![A-Za-z0-9-])", _A
)

# North-American style: 555-0134, 555 0134, 555.010.2233, (555) 010-2233, 1-800-555-0199.
# A bare 7-digit number takes a space or dash only ("123.4567" is a decimal).
# Not after a word char, dot, dash or plus, and not followed by more digits: that keeps date
# pieces ("2026-11-26"), ranges ("2024-2025"), scores ("3-2") and decimals out.
_PHONE_LOCAL = re.compile(
    r"(?<![\w.+-])(?:(?:1[ .-])?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]|\d{3}[ -])\d{4}"
    r"(?!\w|[.-]\d)",
    _A,
)
# International: +CC (1-3 digits), an optional "(0)"/"(555)" trunk, then 7-12 digits with single
# separators (+44 20 7946 0958, +49 30 1234567, +14155552671).
_PHONE_INTL = re.compile(
    r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d){7,12}(?!\w|[.-]\d)", _A
)

# Runs of 13+ digits with optional single space/dash separators, cards are looked for inside;
# not the fraction part of a decimal ("3.14159...").
_DIGIT_RUN = re.compile(r"(?<![0-9])(?<![0-9][.,])[0-9](?:[ -]?[0-9]){12,}", _A)
_DIGIT_GROUP = re.compile(r"[0-9]+", _A)

# Groups of 4 (the printed form) or compact; trailing chunks are retried if the checksum fails.
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
)

# Area 000/666/9xx, group 00 and serial 0000 are never issued.
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?!\w|-\d)", _A)

_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?!\w|\.\d)", _A)
# Shape only (2-7 colons, optional embedded IPv4 tail); ipaddress decides.
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?"
    r"(?![\w:]|\.\d)",
    _A,
)
_IPV6_LONG_GROUP = re.compile(r"[0-9A-Fa-f]{3}")

_AWS_KEY = re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])")
# Classic tokens are 36 chars after the prefix; longer runs are taken whole rather than leaving
# a visible tail.
_GITHUB_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{82,255})"
    r"(?![A-Za-z0-9_])"
)
# Through the matching END line, or to the end of the text when it was cut off.
_PRIVATE_KEY = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY(?: BLOCK)?-----"
    r".*?(?:-----END \1PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
_BEARER = re.compile(r"(?<![A-Za-z0-9])[Bb]earer[ \t]+([A-Za-z0-9._~+/-]{20,}=*)")

_ASCII_DIGITS = b"0123456789"
_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)

Candidate = tuple[int, int, str]


def _count_digits(text: str) -> int:
    """ASCII digits in ``text``; UTF-8 never puts ASCII bytes inside a multi-byte character."""
    data = text.encode("utf-8", "surrogatepass")
    return len(data) - len(data.translate(None, _ASCII_DIGITS))


def _luhn_ok(digits: str) -> bool:
    """Luhn checksum, the check digit every payment card number carries."""
    rev = digits[::-1]
    doubled = sum(_LUHN_DOUBLED[ord(ch) - 48] for ch in rev[1::2])
    return (sum(map(int, rev[0::2])) + doubled) % 10 == 0


def _iban_ok(compact: str) -> bool:
    """ISO 13616 check: country + check digits moved to the end, letters as 10-35, mod 97 == 1."""
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _ipv4_ok(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _ipv6_ok(text: str) -> bool:
    """Valid address with a decimal digit and a 3+ hex group: not a time, slice or C++ scope."""
    if not any("0" <= ch <= "9" for ch in text) or not _IPV6_LONG_GROUP.search(text):
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _scan(
    pattern: re.Pattern[str],
    kind: str,
    text: str,
    out: list[Candidate],
    valid: Callable[[str], bool] | None = None,
) -> None:
    for m in pattern.finditer(text):
        if valid is None or valid(m.group()):
            out.append((m.start(), m.end(), kind))


def _card_end(groups: list[tuple[int, int]], i: int, text: str) -> int | None:
    """End of the longest card written from group ``i`` on, or None.

    A card is one group of 13-19 digits, or a first group of 4 followed by groups of 3-6
    (4-4-4-4, 4-6-5, 4-4-4-4-3 ...), 13-19 digits in all, passing Luhn; none starts with 0.
    """
    start, end = groups[i]
    if text[start] == "0":
        return None
    if end - start != 4:
        return end if 13 <= end - start <= 19 and _luhn_ok(text[start:end]) else None
    best = None
    digits = text[start:end]
    for gs, ge in groups[i + 1 : i + 6]:
        if not 3 <= ge - gs <= 6 or len(digits) + ge - gs > 19:
            break
        digits += text[gs:ge]
        if len(digits) >= 13 and _luhn_ok(digits):
            best = ge
    return best


def _find_cards(text: str, out: list[Candidate]) -> None:
    """Longest card from every digit group of each run; overlap resolution picks among them, so
    a card followed by a year or preceded by an amount is still found."""
    for run in _DIGIT_RUN.finditer(text):
        groups = [(g.start(), g.end()) for g in _DIGIT_GROUP.finditer(text, *run.span())]
        for i, (start, _) in enumerate(groups):
            end = _card_end(groups, i, text)
            if end is not None:
                out.append((start, end, "card"))


def _find_ibans(text: str, out: list[Candidate]) -> None:
    for m in _IBAN.finditer(text):
        start, raw = m.start(), m.group()
        # Whole match first, then shorter at each space: a 4-letter word after an IBAN whose
        # length is a multiple of 4 gets swallowed as one more group.
        cuts = [len(raw)] + [i for i in range(len(raw) - 1, 0, -1) if raw[i] == " "]
        for cut in cuts:
            if _iban_ok(raw[:cut].replace(" ", "")):
                out.append((start, start + cut, "iban"))
                break


def _candidates(text: str) -> list[Candidate]:
    """Every candidate span; cheap substring and digit-count gates skip patterns that cannot hit."""
    out: list[Candidate] = []
    digits = _count_digits(text)
    if "@" in text:
        _scan(_EMAIL, "email", text, out)
    if digits >= 7:
        _scan(_PHONE_LOCAL, "phone", text, out)
        if "+" in text:
            _scan(_PHONE_INTL, "phone", text, out)
        if digits >= 9 and "-" in text:
            _scan(_SSN, "ssn", text, out)
        if digits >= 13:
            _find_cards(text, out)
        _find_ibans(text, out)
    if digits >= 4 and "." in text:
        _scan(_IPV4, "ipv4", text, out, _ipv4_ok)
    if digits and ":" in text:
        _scan(_IPV6, "ipv6", text, out, _ipv6_ok)
    if "AKIA" in text or "ASIA" in text:
        _scan(_AWS_KEY, "aws_key", text, out)
    if "_" in text:
        _scan(_GITHUB_TOKEN, "github_token", text, out)
    if "-----BEGIN" in text:
        _scan(_PRIVATE_KEY, "private_key", text, out)
    if "earer" in text:
        out.extend((m.start(1), m.end(1), "bearer_token") for m in _BEARER.finditer(text))
    return out


def find_pii(text: str) -> list[PIIMatch]:
    """Non-overlapping matches sorted by start; of overlapping candidates the longer one wins,
    then the more specific kind (so a phone-shaped piece of a card number is one card)."""
    candidates = sorted(_candidates(text), key=lambda c: (c[0] - c[1], _SPECIFICITY[c[2]], c[0]))
    starts: list[int] = []
    kept: list[Candidate] = []
    for cand in candidates:
        start, end, _ = cand
        i = bisect_left(starts, start)
        if (i > 0 and kept[i - 1][1] > start) or (i < len(kept) and kept[i][0] < end):
            continue
        starts.insert(i, start)
        kept.insert(i, cand)
    return [PIIMatch(kind, start, end) for start, end, kind in kept]


def redact(text: str, matches: Sequence[PIIMatch] | None = None) -> str:
    """``text`` with each match replaced by its placeholder (``find_pii(text)`` when None).

    Overlapping caller-supplied matches are merged under the first one's placeholder, so no
    fragment of either leaks.
    """
    if matches is None:
        matches = find_pii(text)
    if not matches:
        return text
    parts: list[str] = []
    pos = 0
    for m in sorted(matches, key=lambda m: (m.start, -m.end)):
        if m.kind not in PLACEHOLDERS:
            raise ValueError(f"unknown PII kind {m.kind!r}; expected one of {PII_KINDS}")
        if not 0 <= m.start < m.end <= len(text):
            raise ValueError(f"match {m} outside the text (length {len(text)})")
        if m.end <= pos:
            continue
        if m.start < pos:
            pos = m.end
            continue
        parts.append(text[pos : m.start])
        parts.append(PLACEHOLDERS[m.kind])
        pos = m.end
    parts.append(text[pos:])
    return "".join(parts)


def pii_scores(texts: Sequence[str]) -> list[float]:
    """1.0 when a text contains any PII or secret, else 0.0: a plain-callable screen backend."""
    return [1.0 if find_pii(t) else 0.0 for t in texts]

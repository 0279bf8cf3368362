"""Text normalization that runs before every content classifier (profanity, blocklist).

People evade word-level classifiers with look-alike letters ("іdіot" in Cyrillic), invisible
characters ("id<U+200B>iot"), leetspeak ("y0u 1d10t"), spelled-out words ("i.d.i.o.t", "f u c k"),
stretched letters ("stuuuupid") and fullwidth or styled letters. `normalize` folds all of these
to the plain lowercase word so the classifier sees what a reader sees. The result only feeds
classifiers: people are shown the original text, and PII detection runs on the original too.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import chain

__all__ = ["normalize"]

# Hand-written look-alike table (target: ASCII). Capitals map to capitals; step 4 lowercases.
# Accented forms (ё, ї, ά, ...) need no entry: they are decomposed first, the mark is dropped.
_CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j",
    "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "к": "k", "м": "m", "н": "h", "т": "t", "в": "b",
    "ӏ": "l", "ү": "y", "һ": "h", "ԍ": "g",
    "А": "A", "Е": "E", "О": "O", "Р": "P", "С": "C", "У": "Y", "Х": "X", "І": "I", "Ј": "J",
    "Ѕ": "S", "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W", "К": "K", "М": "M", "Н": "H", "Т": "T", "В": "B",
    "Ӏ": "I", "Ү": "Y", "Һ": "H",
    # Greek
    "α": "a", "ο": "o", "ρ": "p", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "τ": "t", "υ": "u",
    "χ": "x", "η": "n", "ϲ": "c", "ϳ": "j",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C",
    # Armenian
    "օ": "o", "ս": "u", "ո": "n", "հ": "h", "ց": "g", "զ": "q",
    # Latin letters that do not decompose, and "small caps" text generators
    "ı": "i", "ȷ": "j", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ɑ": "a", "ɡ": "g", "ɩ": "i",
    "ß": "ss", "ẞ": "SS",
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h", "ɪ": "i",
    "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ꜱ": "s",
    "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
    # Typographic punctuation, common in model output: folded so such text stays on the ASCII
    # fast path and a blocklist entry "don't" also matches "don’t".
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "“": '"', "”": '"', "„": '"', "‟": '"',
    "‐": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-", "·": ".",
}  # fmt: skip

# Diacritic blocks whose marks are dropped (zalgo text lives here). Marks of other scripts
# (Devanagari vowel signs, Hebrew points, ...) carry meaning and are kept.
_DIACRITIC_BLOCKS = (
    (0x0300, 0x036F),  # Combining Diacritical Marks (incl. U+034F grapheme joiner)
    (0x0483, 0x0489),  # Cyrillic combining marks
    (0x1AB0, 0x1AFF),  # Combining Diacritical Marks Extended
    (0x1DC0, 0x1DFF),  # Combining Diacritical Marks Supplement
    (0x20D0, 0x20FF),  # Combining Diacritical Marks for Symbols
    (0xFE20, 0xFE2F),  # Combining Half Marks
    (0xFE00, 0xFE0F),  # variation selectors (invisible)
    (0xE0100, 0xE01EF),  # variation selectors supplement (invisible)
)
# Visually blank letters (category Lo) used as invisible padding.
_BLANK_LETTERS = (0x115F, 0x1160, 0x3164, 0xFFA0)


def _build_fold_table() -> dict[int, str | None]:
    """One `str.translate` table for steps 2-3: drop invisibles and marks, fold look-alikes.

    Built at import (~50 ms) from the running Python's Unicode database so new format
    characters are covered without a hand-kept list.
    """
    table: dict[int, str | None] = {}
    # Cf (zero-width, bidi, soft hyphen, tags, ...) lives in planes 0, 1 and 14 only.
    for cp in chain(range(0x30000), range(0xE0000, 0xE1000)):
        ch = chr(cp)
        category = unicodedata.category(ch)
        if category == "Cf" or (category == "Cc" and not ch.isspace()):
            table[cp] = None
    for lo, hi in _DIACRITIC_BLOCKS:
        for cp in range(lo, hi + 1):
            if unicodedata.category(chr(cp)).startswith("M"):
                table[cp] = None
    for cp in _BLANK_LETTERS:
        table[cp] = None
    for src, dst in _CONFUSABLES.items():
        table[ord(src)] = dst
    # Case closure: a letter whose lowercase is folded is folded too, otherwise lowercasing
    # (step 4) could produce a look-alike and break idempotence.
    for cp in range(0x30000):
        if cp in table:
            continue
        low = chr(cp).lower()
        if len(low) == 1 and ord(low) in table:
            table[cp] = table[ord(low)]
    return str.maketrans(table)


_FOLD = _build_fold_table()
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")  # same as the table's ASCII part

# Step 5, leetspeak. A "word" is a run of ASCII letters, digits, "_" and leet symbols, or a
# spelled-out run of >= 3 single such characters ("s h 1 t", "1.d.1.o.t") taken as a whole.
# Text is whitespace-normalized by then, so " " is the only space a pattern has to know.
_LEET = str.maketrans("0134578@$!|", "oieastbasil")
_W = r"[a-z0-9_@$!|]"
_SEP_CHARS = " .-*'`~+,:;/\\^=#\"•"  # "_" is a word character here, a separator in step 6
_SEP = "[" + re.escape(_SEP_CHARS) + "]"
_LEET_WORD = re.compile(
    rf"(?<!{_W})(?:(?=[a-z_269]*+[0134578@$!|])(?=[0-9_@$!|]*+[a-z]){_W}+"  # letter and symbol
    rf"|{_W}(?P<sep>{_SEP}{{1,3}}){_W}(?:(?P=sep){_W})+(?!{_W}))"  # spelled out
)
_ASCII_LETTER = re.compile(r"[a-z]")
# Numbers with a unit or ordinal suffix stay numbers: "5th", "10am", "1990s", "$5m", "3d",
# and so do sizes ("1920x1080", "4x4").
_NUMBER_WITH_UNIT = re.compile(
    r"\$?[0-9]+(?:st|nd|rd|th|s|am|pm|k|m|b|bn|mn|x|d|g|h|hr|hrs|min|mins|kg|mg|km|cm|mm|ml|l"
    r"|kb|mb|gb|tb|hz|khz|mhz|ghz|px|fps|p|v|w|kw|kwh)|[0-9]+x[0-9]+"
)

# Step 6: >= 3 single letters with one repeated separator ("f u c k", "i.d.i.o.t"); not glued
# to a word or a leet symbol (a trailing "!" is fine), nor starting at the "s" of "it's".
_L = r"[^\W\d_]"  # a letter
_SEP6 = "[" + re.escape(_SEP_CHARS + "_") + "]"
_SPELLED = re.compile(
    rf"(?<![\w@$!|])(?<![^\W_]'){_L}(?P<sep>{_SEP6}{{1,3}}){_L}(?:(?P=sep){_L})+(?![\w@$|])"
)
# Step 7: a letter repeated 3+ times becomes one ("stuuuupid"); doubles ("cool") stay, and so
# do repeated digits and punctuation ("1000", "..."). Any-character triples scan fast and are
# rare, so the letter test runs per match.
_TRIPLE = re.compile(r"(.)\1\1+")


def _unstretch(match: re.Match[str]) -> str:
    ch = match.group(1)
    return ch if ch.isalpha() else match.group()


# Fast path for ASCII text: the step 5-7 regexes cost several microseconds each, and most text
# needs none of them. A class signature, one byte per character (letter "a"; digit, "_" or leet
# symbol "1"; "!"; "_"; anything else " "), answers "could this step change the text?" with a few
# substring tests. The tests are supersets: "yes" only means the regex runs.
def _class_table() -> bytes:
    def cls(ch: str) -> str:
        if ch.isalpha():
            return "a"
        if ch in "0123456789@$|":
            return "1"
        return ch if ch in "!_" else " "

    return "".join(cls(chr(b)) for b in range(128)).encode("ascii") + bytes(128)


_CLASSES = _class_table()


def _hints(s: str) -> tuple[bool, bool]:
    """For lowercase, whitespace-normalized ASCII: could step 5 (leet) / 6 (joining) change it?"""
    sig = s.encode("ascii").translate(_CLASSES).decode("ascii")
    if "_" in sig:  # "_" is part of a word for step 5, a separator for step 6
        word, sig = sig.replace("_", "1"), sig.replace("_", " ")
    else:
        word = sig
    leet = "a1" in word or "1a" in word  # a letter next to a digit or leet symbol
    if "!" in sig:
        leet = leet or "!a" in word or "!1" in word  # a "!" that is not trailing punctuation
        sig = sig.replace("!", "1")
    sig = " " + " ".join(sig.split()) + " "  # single characters become " x " tokens
    leet = leet or " a 1 " in sig or " 1 a " in sig
    return leet, " a a a" in sig


def _fold_leet(match: re.Match[str]) -> str:
    """Fold leet symbols inside one word; a trailing "!" is punctuation, not an "i"."""
    word = match.group()
    core = word.rstrip("!" + _SEP_CHARS)
    if not _ASCII_LETTER.search(core) or _NUMBER_WITH_UNIT.fullmatch(core):
        return word
    return core.translate(_LEET) + word[len(core) :]


def _join_spelled(match: re.Match[str]) -> str:
    """Drop the separators of a spelled-out run: letters sit every len(sep)+1 characters."""
    return match.group()[:: len(match.group("sep")) + 1]


def _fold_words(s: str) -> str:
    """Steps 5-7 on lowercase, whitespace-normalized text, repeated until nothing changes.

    One round can enable another (shortening "aaa b c" to "a b c" makes a new spelled-out
    run; joining can free an overlapping run with another separator), and the result must be a
    fixed point for idempotence. A round that changes the text shortens it or turns a symbol
    into a letter, so this ends; text that needs nothing costs one round of cheap tests.
    """
    while True:
        leet, join = _hints(s) if s.isascii() else (True, True)
        folded = _LEET_WORD.sub(_fold_leet, s) if leet else s
        if join or folded != s:  # new letters may complete a spelled-out run
            folded = _SPELLED.sub(_join_spelled, folded)
        folded = _TRIPLE.sub(_unstretch, folded)
        if folded == s:
            return s
        s = folded


def normalize(text: str) -> str:
    """Fold evasions (look-alikes, invisibles, leet, spelling-out, stretching) for classifiers.

    Idempotent; plain ASCII prose only changes in case and whitespace. Numbers are kept ("2-1",
    "555-0134", "$6.5"): leet folding applies only inside words that contain a letter.
    """
    if text.isascii():
        s = text if text.isprintable() else _ASCII_CONTROL.sub("", text)
    else:
        # Steps 1-3. NFKC is realised as NFKD -> drop/fold -> NFC: the same compatibility
        # folding, but accented look-alikes (ї, ё, ά) are folded too once their mark is gone.
        s = unicodedata.normalize("NFKD", text).translate(_FOLD)
        s = unicodedata.normalize("NFC", s)
    s = " ".join(s.lower().split())  # steps 4 and 8 (steps 5-7 add no whitespace)
    return _fold_words(s)

"""Text normalization before content classifiers: evasions fold to the plain word, plain text
and numbers survive, and the result is a fixed point."""

from __future__ import annotations

import importlib
import random
import re
import timeit

import pytest

from guarded_rl.safety.normalize import normalize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("y0u 1d10t", "you idiot"),
        ("\u0456d\u0456ot", "idiot"),  # Cyrillic і
        ("\u0456\u0501\u0456\u043e\u0442", "idiot"),  # all Cyrillic look-alikes
        ("\u0399D\u0399\u039f\u03a4", "idiot"),  # Greek capitals
        ("id\u200biot", "idiot"),  # zero-width space
        ("i\u200cd\u200di\u2060o\ufefft", "idiot"),  # ZWNJ, ZWJ, word joiner, BOM
        ("\u202eidiot\u202c", "idiot"),  # bidi override
        ("\u2066stu\u00adpid\u2069", "stupid"),  # bidi isolate, soft hyphen
        ("id\u3164iot", "idiot"),  # Hangul filler (a blank letter)
        ("id\x00iot", "idiot"),  # control character
        ("i.d.i.o.t", "idiot"),
        ("f u c k", "fuck"),
        ("s-t-u-p-i-d", "stupid"),
        ("s_t_u_p_i_d", "stupid"),
        ("f. u. c. k.", "fuck."),
        ("s * t * u * p * i * d", "stupid"),
        ("f'u'c'k", "fuck"),
        ("s h 1 t", "shit"),
        ("1.d.1.o.t", "idiot"),
        ("stuuuupid", "stupid"),
        ("idiiiiiiot", "idiot"),
        ("ＩＤＩＯＴ", "idiot"),  # fullwidth
        ("𝐢𝐝𝐢𝐨𝐭", "idiot"),  # mathematical bold
        ("ɪdɪot", "idiot"),  # small capital I
        ("i\u0336d\u0336i\u0336o\u0336t\u0336", "idiot"),  # strike-through combining marks
        ("ïdïöt", "idiot"),  # diacritics
        ("\u0457d\u0457ot", "idiot"),  # Cyrillic ї: look-alike with a diacritic
        ("sh!t", "shit"),
        ("$hit", "shit"),
        ("a$$", "ass"),
        ("b1tch", "bitch"),
        ("@ss", "ass"),
        ("YOU ARE AN IDIOT!!!", "you are an idiot!!!"),
        ("  what   a\tstuuuupid\nbot  ", "what a stupid bot"),
    ],
)
def test_evasions_fold_to_the_plain_word(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("what a s-t-u-p-i-d id\u200biot you are, sh!t", "stupid"),
        ("what a s-t-u-p-i-d id\u200biot you are, sh!t", "idiot"),
        ("what a s-t-u-p-i-d id\u200biot you are, sh!t", "shit"),
        ("Ｔhis іs a tеst, f u c k this", "fuck"),
        ("I am a big fan of i.d.i.o.t spelling", "idiot"),
        ("u r sooooo stuuuupid!!", "stupid"),
    ],
)
def test_evasions_inside_sentences(text: str, word: str) -> None:
    assert re.search(rf"\b{word}\b", normalize(text)), normalize(text)


@pytest.mark.parametrize(
    "text",
    [
        "Scunthorpe United beat Rovers 2-1",
        "Call 555-0134 in 2033",
        "cocktail party in Lisbon",
        "the $6.5 billion deal",
        "I am a big fan",
        "Plan a b",  # two single letters are not a spelled-out word
        "it's a b-movie",
        "Meet at 10am on the 5th, back by 3pm",
        "Music of the 1990s on a 1920x1080 screen",
        "Great job, well done!",
        "Wait... what?!",
        "The cool kid lost 1000 marbles",
        "covid-19 cases fell 40% in 2024",
        "x = 1 + 2",
        "한국어 텍스트",
        "हिन्दी पाठ",
        "日本語のテキスト",
    ],
)
def test_benign_text_changes_only_case_and_whitespace(text: str) -> None:
    assert normalize(text) == " ".join(text.lower().split())
    assert normalize(f"  {text}\n") == " ".join(text.lower().split())


@pytest.mark.parametrize("text", ["2033", "555-0134", "$6.5", "0 1 3", "1.4.5", "7 8 4 0", "!!!"])
def test_tokens_without_letters_are_not_leet_folded(text: str) -> None:
    assert normalize(text) == text


def test_trailing_exclamation_is_punctuation_not_an_i() -> None:
    assert normalize("hello!") == "hello!"
    assert normalize("i d i o t !") == "idiot !"
    assert normalize("!d!ot") == "idiot"


def test_doubled_letters_stay_tripled_collapse() -> None:
    assert normalize("cool loss too") == "cool loss too"
    assert normalize("cooool") == "col"
    assert normalize("hmmm zzz") == "hm z"


def test_typographic_punctuation_folds_to_ascii() -> None:
    assert normalize("Don\u2019t \u201cquote\u201d \u2014 me") == 'don\'t "quote" - me'


def test_empty_and_invisible_only_text() -> None:
    assert normalize("") == ""
    assert normalize("   \n\t ") == ""
    assert normalize("\u200b\u200d\ufeff\u202e") == ""


_SAMPLE = [
    "y0u 1d10t",
    "\u0456d\u0456ot i.d.i.o.t f u c k stuuuupid",
    "aaa b c",  # collapsing makes a new spelled-out run
    "a.a.a b c",
    "0 1 yyy`x+3",
    "y`z`z`9=0=b",  # overlapping spelled-out runs
    "Scunthorpe United beat Rovers 2-1",
    "the $6.5 billion deal",
    "İstanbul Straße ẞ",
    "ΣΊΣΥΦΟΣ Ϳ ϳ",
    "Ｆｕｌｌｗｉｄｔｈ ＴＥＸＴ 123",
    "z\u0301\u0302\u0303a\u0336l\u0337g\u0338o",
]


def test_idempotent_on_a_sample() -> None:
    rng = random.Random(0)
    pool = (
        list("abcdeiostuxyz0134578269_@$!| .-*'`,:;/\"")
        + list("\u0430\u0435\u043e\u0456\u03b1\u03bf\u0399\u00e9\u00df\u0130\u1e9e\uff41")
        + ["\u200b", "\u202e", "\u0301", "\u00ad", "\u3164", "\n"]
    )
    sample = list(_SAMPLE)
    sample += ["".join(rng.choice(pool) for _ in range(rng.randint(1, 24))) for _ in range(3000)]
    for text in sample:
        once = normalize(text)
        assert normalize(once) == once, (text, once)


def test_ascii_shortcut_never_skips_a_change() -> None:
    """The ASCII fast path may skip the leet or joining regex only where it would do nothing."""
    module = importlib.import_module("guarded_rl.safety.normalize")
    rng = random.Random(1)
    chars = "abcxyz0135269_@$!|"
    seps = ["_", " ", ".", "-", "*", "'", ",", "=", ". ", " - ", "?", "("]
    for _ in range(5000):
        words = ["".join(rng.choices(chars, k=rng.choice((1, 1, 2, 3)))) for _ in range(6)]
        text = words[0] + "".join(rng.choice(seps) + w for w in words[1 : rng.randint(1, 6)])
        leet, join = module._hints(text)
        if not leet:
            assert module._LEET_WORD.sub(module._fold_leet, text) == text, text
        if not join:
            assert module._SPELLED.sub(module._join_spelled, text) == text, text


def test_throughput_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints texts per second (a figure for the reader; wall time is not asserted)."""
    texts = [
        "The model said the weather in Lisbon is sunny, 21 degrees today.",
        "Scunthorpe United beat Rovers 2-1 in a tense final at home!",
        "Sure, here is a short summary of the article you sent me.",
        "y0u are such an 1d10t, honestly stuuuupid answer from you",
    ] * 500
    seconds = min(timeit.repeat(lambda: [normalize(t) for t in texts], number=1, repeat=3))
    with capsys.disabled():
        print(f"\nnormalize: {len(texts) / seconds:,.0f} texts/s (~60 chars, 1 in 4 evasive)")
    assert normalize(texts[3]) == "you are such an idiot, honestly stupid answer from you"

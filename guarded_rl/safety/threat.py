"""Violent threats against people: a rule backend for what a profanity model misses.

alt-profanity-check is a bag-of-words profanity model: "I will hurt your family" contains no
profanity and scores low. This backend flags violence aimed at a person: a violent verb
followed closely by a person (a pronoun, "yourself", "your family", or a role such as "the
mayor"), or a wish or promise of death ("hope you die", "you will die"). It runs on normalized
text, so spelling evasions fold first. "Kill the process", "shoot the final" or "the drought
may kill off the crop" do not match: their objects are not people. It does not understand
irony, quotes or reporting ("police say he threatened to kill..."): those still match.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_VIOLENT = (
    r"(?:kill|murder|shoot|stab|hurt|strangle|choke|burn|bomb|slaughter|butcher|"
    r"hang|lynch|rape|torture|execute|behead)(?:s|ed|ing)?"
)
_ROLE = (
    r"(?:mayor|journalists?|reporters?|referees?|ministers?|senators?|president|police|"
    r"officers?|judges?|coach|players?|fans|teachers?|doctors?|nurses?|kids|children|"
    r"family|families|wife|husband|mother|father|mom|dad|son|daughter|friends?|"
    r"people|women|men|immigrants|traitors?|editors?|staff|councillors?|voters)"
)
_PERSON = (
    r"(?:you|yourself|yourselves|him|her|them|themselves|us|everyone|everybody|"
    rf"(?:your|his|her|their|our|my)\s+{_ROLE}|"
    rf"(?:the|that|this|those|these|every|all)\s+(?:\w+\s+)?{_ROLE})"
)
_THREAT = re.compile(
    rf"\b{_VIOLENT}\s+(?:\w+\s+)?{_PERSON}\b"
    r"|\b(?:hope|wish|pray)\s+(?:you|he|she|they|it)\s+(?:\w+\s+)?(?:die|dies|burn|rot)\b"
    r"|\b(?:you|he|she|they|we)\s+(?:will|'ll|are\s+going\s+to|gonna)\s+die\b"
    r"|\b(?:to|until)\s+(?:your|his|her|their)\s+death\b"
    r"|\bbeat\s+\w+\s+to\s+death\b"
)


def threat_scores(texts: Sequence[str]) -> list[float]:
    """1.0 for a (normalized) text that threatens a person with violence, else 0.0."""
    return [1.0 if _THREAT.search(t) else 0.0 for t in texts]

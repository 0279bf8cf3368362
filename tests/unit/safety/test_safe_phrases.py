"""Safe phrases: benign fixed expressions hidden from the classifiers, nothing else."""

from __future__ import annotations

import pytest

from guarded_rl.policy import SafetyPolicy
from guarded_rl.records import Sample
from guarded_rl.safety.safe_phrases import SafePhrases, builtin_safe_phrases
from guarded_rl.safety.screen import screen_from_policy


def _actions(policy: SafetyPolicy, *texts: str) -> list[str]:
    samples = [Sample(str(i), 0, "-", "", t, (), ()) for i, t in enumerate(texts)]
    return [v.action for v in screen_from_policy(policy).screen(samples)]


def test_builtin_list_loads_without_comments() -> None:
    phrases = builtin_safe_phrases()
    assert "pussy willow" in phrases
    assert not [p for p in phrases if p.startswith("#") or not p.strip()]


def test_mask_removes_whole_phrases_and_plurals_only() -> None:
    phrases = SafePhrases(["pussy willow", "blue tit"])
    assert phrases.mask("the pussy willows bloom").split() == ["the", "bloom"]
    assert phrases.mask("a blue tit sings").split() == ["a", "sings"]
    # not inside other words, and a bare offensive word stays
    assert phrases.mask("blue titan").split() == ["blue", "titan"]
    assert phrases.mask("pussy cat willow").split() == ["pussy", "cat", "willow"]


def test_empty_list_is_refused() -> None:
    with pytest.raises(ValueError):
        SafePhrases(["  "])


def test_named_entities_pass_but_insults_next_to_them_still_block() -> None:
    policy = SafetyPolicy()
    assert _actions(
        policy,
        "Dick Van Dyke returns to the stage",
        "The pussy willow blooms early",
        "Jerk chicken wins the food festival",
        "Dick Van Dyke is a stupid dick",
        "you jerk, the pussy willow is ugly and you are a fucking idiot",
    ) == ["allow", "allow", "allow", "block", "block"]


def test_evasions_of_a_safe_phrase_are_folded_like_any_text() -> None:
    # normalization runs first, so spelled-out or look-alike forms are recognised too
    assert _actions(SafetyPolicy(), "The p.u.s.s.y willow blooms", "Thе рussy willow blooms") == [
        "allow",
        "allow",
    ]


def test_policy_switches_the_list_off_and_extends_it() -> None:
    off = SafetyPolicy(builtin_safe_phrases=False)
    assert _actions(off, "The pussy willow blooms early") == ["block"]
    extended = SafetyPolicy(safe_phrases=["bastard file"], builtin_safe_phrases=False)
    assert _actions(extended, "Carpenters use a bastard file on rough edges") == ["allow"]


def test_safe_phrases_do_not_hide_words_from_the_blocklist() -> None:
    policy = SafetyPolicy(filters=["blocklist"], blocklist=["willow"])
    assert _actions(policy, "The pussy willow blooms early") == ["block"]

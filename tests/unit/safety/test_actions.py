"""Screen decisions: allow, redact, escalate, block; the most severe wins; failing closed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from guarded_rl.errors import GuardBlockedError, PolicyError
from guarded_rl.policy import GuardPolicy, SafetyPolicy
from guarded_rl.records import Sample
from guarded_rl.safety.blocklist import Blocklist
from guarded_rl.safety.code_allow import allowing
from guarded_rl.safety.evaluate import DEFAULT_DATA, evaluate, load_rows
from guarded_rl.safety.profanity import profanity_model
from guarded_rl.safety.screen import Backend, FilterScreen, screen_from_policy, shown_form
from guarded_rl.safety.threat import threat_scores


def _samples(*texts: str) -> list[Sample]:
    return [Sample(f"c0-r0-k{i}", 0, "u-x", "", t, (0,), (1,)) for i, t in enumerate(texts)]


def _has(char: str):
    def score(texts: Sequence[str]) -> list[float]:
        return [1.0 if char in t else 0.0 for t in texts]

    return score


def test_most_severe_action_wins_and_redaction_shows_placeholders() -> None:
    screen = FilterScreen(
        {
            "pii": Backend(_has("@"), 0.5, "redact", sees="original"),
            "hold": Backend(_has("?"), 0.5, "escalate"),
            "bad": Backend(_has("!"), 0.5, "block"),
        }
    )
    texts = ("plain", "mail bob@example.com now", "really?", "mail a@example.com?!")
    verdicts = screen.screen(_samples(*texts))
    assert [v.action for v in verdicts] == ["allow", "redact", "escalate", "block"]
    assert verdicts[1].redacted == "mail [EMAIL] now"
    assert verdicts[1].allowed and not verdicts[2].allowed and not verdicts[3].allowed
    shown = shown_form(_samples(*texts)[1], verdicts[1])
    assert shown.text == "mail [EMAIL] now"
    assert verdicts[3].reasons == ("pii", "hold", "bad")


def test_escalate_band_holds_borderline_scores() -> None:
    def score(texts: Sequence[str]) -> list[float]:
        return [float(t) for t in texts]

    screen = FilterScreen({"s": Backend(score, 0.5, "block", escalate_from=0.3)})
    verdicts = screen.screen(_samples("0.1", "0.3", "0.49", "0.5"))
    assert [v.action for v in verdicts] == ["allow", "escalate", "escalate", "block"]
    assert verdicts[1].reasons == ("s:borderline",)


def test_failing_backend_escalates_only_when_the_policy_says_so() -> None:
    def broken(texts: Sequence[str]) -> list[float]:
        raise RuntimeError("model file missing")

    held = FilterScreen({"b": Backend(broken, 0.5)}, on_error="escalate").screen(_samples("x"))
    assert held[0].action == "escalate" and held[0].reasons == ("b:error:RuntimeError",)
    blocked = FilterScreen({"b": Backend(broken, 0.5)}).screen(_samples("x"))
    assert blocked[0].action == "block"
    with pytest.raises(GuardBlockedError):
        FilterScreen({"b": Backend(broken, 0.5)}, on_error="allow")  # type: ignore[arg-type]


def test_classifiers_see_normalized_text_pii_sees_the_original() -> None:
    seen: dict[str, list[str]] = {"norm": [], "orig": []}

    def spy(key: str):
        def score(texts: Sequence[str]) -> list[float]:
            seen[key].extend(texts)
            return [0.0] * len(texts)

        return score

    FilterScreen(
        {"a": Backend(spy("norm"), 0.5), "b": Backend(spy("orig"), 0.5, sees="original")}
    ).screen(_samples("Y0u 1.d.i.o.t"))
    assert "idiot" in seen["norm"][0]
    assert seen["orig"] == ["Y0u 1.d.i.o.t"]


@pytest.mark.parametrize(
    "text",
    ["you are an 1d10t", "you are an i.d.i.o.t", "you are an іdіot", "you are an id\u200biot"],
)
def test_default_screen_blocks_evasions(text: str) -> None:
    (verdict,) = screen_from_policy(GuardPolicy().safety).screen(_samples(text))
    assert verdict.action == "block", verdict


def test_default_screen_blocks_threats_and_personal_data() -> None:
    verdicts = screen_from_policy(GuardPolicy().safety).screen(
        _samples("I will hurt your family", "Call 555-0134 now", "Rovers beat City 2-1")
    )
    assert [v.action for v in verdicts] == ["block", "block", "allow"]
    assert "threat" in verdicts[0].reasons and "pii" in verdicts[1].reasons


def test_pii_redact_policy_shows_the_rest() -> None:
    screen = screen_from_policy(SafetyPolicy(pii_action="redact"))
    (verdict,) = screen.screen(_samples("Write to maria.lopez@example.com for tickets"))
    assert verdict.action == "redact"
    assert verdict.redacted == "Write to [EMAIL] for tickets"


def test_blocklist_matches_whole_normalized_words_only() -> None:
    blocklist = Blocklist(["cunt", "idiot"])
    assert blocklist(["scunthorpe united wins", "what an idiot", "i.d.i.o.t"]) == [0.0, 1.0, 0.0]
    screen = screen_from_policy(SafetyPolicy(filters=["blocklist"], blocklist=["idiot"]))
    actions = [v.action for v in screen.screen(_samples("Scunthorpe", "what an i.d.i.o.t"))]
    assert actions == ["allow", "block"]


def test_empty_blocklist_filter_is_refused() -> None:
    with pytest.raises(ValueError, match="blocklist is empty"):
        SafetyPolicy(filters=["blocklist"])


def test_threat_rules_need_a_person_as_the_object() -> None:
    threats = [
        "i will kill you",
        "we will hurt your family",
        "somebody should shoot that journalist",
        "hope you die",
        "beat him to death",
    ]
    benign = [
        "kill the process",
        "shoot the final from the stands",
        "the drought may kill off the crop",
        "the comedian killed it",
        "rovers beat city",
        "rain will hurt their chances",
        "the team destroyed their rivals",
    ]
    assert threat_scores(threats) == [1.0] * len(threats)
    assert threat_scores(benign) == [0.0] * len(benign)


def test_fast_profanity_path_equals_sklearn() -> None:
    model = profanity_model()
    texts = ["you stupid idiot", "local team wins the cup", "", "the the and", "Café ÉLAN"]
    for fast, slow in zip(model(texts), model.reference(texts), strict=True):
        assert abs(fast - slow) < 1e-9


def test_custom_callable_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_scorer.py").write_text(
        "def score(text):\n    return 1.0 if 'zap' in text else 0.0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    policy = SafetyPolicy(filters=["zapper"], custom={"zapper": {"callable": "my_scorer:score"}})
    with allowing(["my_scorer", "no_such_module"]):
        screen = screen_from_policy(policy)
        actions = [v.action for v in screen.screen(_samples("zap it", "fine"))]
        assert actions == ["block", "allow"]
        broken = SafetyPolicy(filters=["z"], custom={"z": {"callable": "no_such_module:score"}})
        with pytest.raises(PolicyError, match="cannot import"):
            screen_from_policy(broken)


def test_evaluation_set_figures_hold() -> None:
    """The issue's floors: toxic recall (with evasions) >= 0.90, PII recall >= 0.95, tricky
    text flagged at most 5 %; plain benign text is never flagged."""
    report = evaluate(load_rows(DEFAULT_DATA), GuardPolicy())
    assert report["toxic_recall"] >= 0.90
    assert report["pii_recall"] >= 0.95
    assert report["benign_false_positive_rate"] == 0.0
    assert report["tricky_false_positive_rate"] <= 0.05
    for variant in ("leet", "dotted", "spaced", "cyrillic", "zero_width", "stretched"):
        assert report["by_group"][f"toxic/variant:{variant}"]["rate"] >= 0.85, variant
    rows = [json.loads(line) for line in DEFAULT_DATA.read_text().splitlines()]
    assert {r["label"] for r in rows} == {"toxic", "benign", "tricky", "pii"}


def test_held_out_tricky_set_stays_under_five_percent() -> None:
    """A set written blind to the filters and the safe-phrase list (not tuned on)."""
    rows = load_rows(DEFAULT_DATA.with_name("safety_tricky_heldout.jsonl"))
    assert len(rows) == 60
    report = evaluate(rows, GuardPolicy())
    assert report["tricky_false_positive_rate"] <= 0.05
    assert report["toxic_precision"] is None

"""A policy names code; only the user decides which code may load (issue 15, item 21)."""

from __future__ import annotations

from pathlib import Path

import pytest

from guarded_rl.errors import PolicyError
from guarded_rl.policy import SafetyPolicy
from guarded_rl.records import Sample
from guarded_rl.safety.code_allow import (
    ENV_ALLOW,
    allowing,
    policy_code,
    require_policy_code_allowed,
)
from guarded_rl.safety.screen import screen_from_policy


def _policy(spec: str) -> SafetyPolicy:
    return SafetyPolicy(filters=["x"], custom={"x": {"callable": spec}})


def _sample(text: str) -> Sample:
    return Sample("0", 0, "-", "", text, (), ())


@pytest.mark.parametrize(
    "spec", ["os:system", "posix:system", "subprocess:getoutput", "builtins:eval", "os.path:isfile"]
)
def test_dangerous_module_refused_even_when_allowed(spec: str, tmp_path: Path) -> None:
    module = spec.partition(":")[0]
    with allowing([module, "os"]), pytest.raises(PolicyError, match="never loaded") as err:
        screen_from_policy(_policy(spec))
    assert err.value.field == "safety.custom.x.callable"
    assert err.value.got == spec


def test_allowed_module_reexporting_os_system_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sneaky_scorer.py").write_text("from os import system as score\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    marker = tmp_path / "ran"
    with allowing(["sneaky_scorer"]), pytest.raises(PolicyError, match="'posix'"):
        screen_from_policy(_policy("sneaky_scorer:score")).screen([_sample(f"touch {marker}")])
    assert not marker.exists()


def test_not_allowed_module_refused_before_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "side_effect_scorer.py").write_text(
        f"open({str(marker)!r}, 'w').close()\ndef score(text):\n    return 0.0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(ENV_ALLOW, raising=False)
    with pytest.raises(PolicyError, match="--allow-code side_effect_scorer"):
        screen_from_policy(_policy("side_effect_scorer:score"))
    assert not marker.exists()


def test_allowed_module_loads_by_flag_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "zap_scorer.py").write_text(
        "def score(text):\n    return 1.0 if 'zap' in text else 0.0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with allowing(["zap_scorer"]):
        verdicts = screen_from_policy(_policy("zap_scorer:score")).screen([_sample("zap")])
    assert verdicts[0].action == "block"
    monkeypatch.setenv(ENV_ALLOW, "other, zap_scorer")
    verdicts = screen_from_policy(_policy("zap_scorer:score")).screen([_sample("fine")])
    assert verdicts[0].action == "allow"


def test_policy_code_lists_what_would_load() -> None:
    policy = _policy("my.pkg:score")
    assert policy_code(policy) == [("safety.custom.x.callable", "my.pkg:score")]
    with pytest.raises(PolicyError) as err:
        require_policy_code_allowed(policy, file="p.toml")
    assert err.value.file == "p.toml"
    with allowing(["my"]):
        require_policy_code_allowed(policy, file="p.toml")  # a package allows its modules

"""Guard policy files: strict keys, validated values, one-line errors naming file and key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from guarded_rl.errors import InputError, PolicyError
from guarded_rl.policy import (
    DEFAULT_PROBE_TEXTS,
    GatePolicy,
    GuardPolicy,
    LearnerPolicy,
    SafetyPolicy,
    load_policy,
    parse_policy,
)

DEFAULT_TOML = Path(__file__).resolve().parents[2] / "guarded_rl" / "policies" / "default.toml"


def _write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> PolicyError:
    path = _write(tmp_path, text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    err = info.value
    assert "\n" not in err.one_line()
    assert err.exit_code == 2
    assert str(path) in err.one_line()
    return err


def test_defaults_are_valid_and_consistent() -> None:
    policy = GuardPolicy()
    assert policy.safety.filters == ["profanity", "threat", "pii"]
    assert 0.0 < policy.safety.profanity_threshold < 1.0
    assert policy.learner.samples_per_prompt >= 2
    assert policy.gate.reject_step_kl > policy.gate.max_step_kl
    assert policy.gate.probe_texts == list(DEFAULT_PROBE_TEXTS)
    # the defaults survive a round trip through validation
    assert GuardPolicy.model_validate(policy.model_dump()) == policy


def test_load_policy_none_gives_defaults() -> None:
    assert load_policy(None) == GuardPolicy()


def test_shipped_default_file_equals_code_defaults() -> None:
    assert DEFAULT_TOML.is_file()
    # every enforced setting equals the code default; only the file's description differs
    shipped = load_policy(DEFAULT_TOML)
    assert shipped.description
    assert shipped.model_copy(update={"description": ""}) == GuardPolicy()
    assert load_policy(str(DEFAULT_TOML)) == shipped


def test_shipped_policies_load_by_name() -> None:
    assert load_policy("strict").name == "strict"
    assert load_policy(Path("default")) == load_policy(DEFAULT_TOML)


def test_unknown_policy_name_lists_the_shipped_ones() -> None:
    with pytest.raises(PolicyError) as info:
        load_policy("stirct")
    line = info.value.one_line()
    assert "policy = 'stirct'" in line and "default, strict" in line and "\n" not in line


def test_a_path_is_never_taken_for_a_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, 'name = "mine"\n', name="strict")
    assert load_policy("./strict").name == "mine"
    assert load_policy("strict").name == "strict"  # the bare name is the shipped policy
    with pytest.raises(PolicyError, match="no such policy file"):
        load_policy("strict.toml")


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, 'name = "strict"\n[safety]\nprofanity_threshold = 0.2\n')
    policy = load_policy(path)
    assert policy.name == "strict"
    assert policy.safety.profanity_threshold == 0.2
    assert policy.safety.filters == ["profanity", "threat", "pii"]
    assert policy.learner == LearnerPolicy()
    assert policy.gate == GatePolicy()


def test_empty_file_is_the_default_policy(tmp_path: Path) -> None:
    assert load_policy(_write(tmp_path, "")) == GuardPolicy()


def test_typo_key_names_file_dotted_key_and_allowed_keys(tmp_path: Path) -> None:
    err = _error(tmp_path, "[safety]\nprofanity_treshold = 0.4\n")
    line = err.one_line()
    assert err.field == "safety.profanity_treshold"
    assert "safety.profanity_treshold" in line
    assert "unknown key" in line
    for allowed in ("blocked_penalty", "filters", "profanity_threshold"):
        assert allowed in line


def test_typo_inside_a_table_of_tables_lists_that_tables_keys(tmp_path: Path) -> None:
    err = _error(
        tmp_path,
        '[safety]\nfilters = ["x"]\n[safety.custom.x]\ncallable = "m:f"\nthresh = 0.4\n',
    )
    assert err.field == "safety.custom.x.thresh"
    assert "expected one of: action, callable, threshold" in err.one_line()


def test_top_level_typo_lists_top_level_keys(tmp_path: Path) -> None:
    err = _error(tmp_path, 'nmae = "x"\n')
    assert err.field == "nmae"
    for allowed in ("audit", "consent", "fairness", "gate", "learner", "name", "safety"):
        assert allowed in err.one_line()
    # nested keys are not offered at the top level
    assert "profanity_threshold" not in err.one_line()


def test_unknown_section_is_an_error(tmp_path: Path) -> None:
    err = _error(tmp_path, "[saftey]\nfilters = ['pii']\n")
    assert err.field == "saftey"
    assert "unknown key" in err.one_line()


@pytest.mark.parametrize(
    ("toml", "key", "value_text"),
    [
        ("[safety]\nprofanity_threshold = 1.5\n", "safety.profanity_threshold", "1.5"),
        ("[safety]\nprofanity_threshold = 0.0\n", "safety.profanity_threshold", "0.0"),
        ("[safety]\nfilters = []\n", "safety.filters", "[]"),
        ("[safety]\nblocked_penalty = 0.5\n", "safety.blocked_penalty", "0.5"),
        ("[learner]\nsamples_per_prompt = 1\n", "learner.samples_per_prompt", "1"),
        ("[learner]\nsamples_per_prompt = 'four'\n", "learner.samples_per_prompt", "'four'"),
        ("[learner]\nmax_new_tokens = 0\n", "learner.max_new_tokens", "0"),
        ("[consent]\npurpose = ''\n", "consent.purpose", "''"),
        ("[fairness]\nmin_group_size = 0\n", "fairness.min_group_size", "0"),
        ("[audit]\ncheckpoint_every = 0\n", "audit.checkpoint_every", "0"),
        ("[gate]\nprobe_texts = []\n", "gate.probe_texts", "[]"),
    ],
)
def test_bad_value_names_key_and_value(
    tmp_path: Path, toml: str, key: str, value_text: str
) -> None:
    err = _error(tmp_path, toml)
    assert err.field == key
    assert f"{key} = {value_text}" in err.one_line()
    assert "invalid value" in err.one_line()
    assert "(expected " in err.one_line()


def test_unknown_filter_name_points_at_the_filter_list(tmp_path: Path) -> None:
    err = _error(tmp_path, "[safety]\nfilters = ['pii', 'toxicity']\n")
    assert err.field == "safety.filters"
    assert "'toxicity'" in err.one_line()
    assert "[safety.custom]" in err.one_line()


@pytest.mark.parametrize(("approve", "reject"), [(0.5, 0.5), (0.5, 0.1)])
def test_reject_kl_must_exceed_approve_kl(tmp_path: Path, approve: float, reject: float) -> None:
    err = _error(tmp_path, f"[gate]\nmax_step_kl = {approve}\nreject_step_kl = {reject}\n")
    line = err.one_line()
    assert err.field == "gate"
    assert f"reject_step_kl ({reject})" in line
    assert f"max_step_kl ({approve})" in line


def test_reject_above_approve_is_accepted(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, "[gate]\nmax_step_kl = 0.1\nreject_step_kl = 0.2\n"))
    assert (policy.gate.max_step_kl, policy.gate.reject_step_kl) == (0.1, 0.2)


def test_invalid_toml(tmp_path: Path) -> None:
    err = _error(tmp_path, "[safety\nfilters = \n")
    assert "invalid TOML" in err.one_line()


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(path)


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(PolicyError) as info:
        load_policy(missing)
    assert info.value.one_line() == f"{missing}: no such policy file"
    assert info.value.exit_code == 2


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path)


def test_parse_policy_uses_source_name() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy({"learner": {"kl_coef": -1}}, source="inline")
    assert info.value.one_line().startswith("inline: learner.kl_coef = -1: invalid value")
    assert isinstance(info.value, InputError)


def test_policies_are_frozen() -> None:
    policy = GuardPolicy()
    with pytest.raises(ValidationError):
        policy.safety.profanity_threshold = 0.1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        SafetyPolicy(extra_key=1)  # type: ignore[call-arg]


@pytest.mark.parametrize("value", ["0", "1001", "2.5", '"ten"'])
def test_fairness_window_updates_is_bounded(tmp_path: Path, value: str) -> None:
    err = _error(tmp_path, f"[fairness]\nwindow_updates = {value}\n")
    assert "fairness.window_updates" in err.one_line()


def test_fairness_window_updates_defaults_to_ten() -> None:
    assert GuardPolicy().fairness.window_updates == 10


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_step_kl", "1e308"), ("reject_step_kl", "inf"), ("reject_step_kl", "nan")],
)
def test_step_kl_thresholds_are_finite_and_bounded(key: str, value: str) -> None:
    """A huge or infinite KL threshold switches the drift check off: refused (item 22)."""
    with pytest.raises(PolicyError) as err:
        parse_policy(tomllib.loads(f"[gate]\n{key} = {value}\n"), source="p.toml")
    assert err.value.field == f"gate.{key}" and err.value.file == "p.toml"

"""The guarded reward for TRL-style trainers: blocked completions get the penalty, personal
data is capped, people without training consent get None (no reward, no training)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
from guarded_rl.errors import InputError
from guarded_rl.integrations.rewards import guarded_reward
from guarded_rl.policy import GuardPolicy, SafetyPolicy

CLEAN = "Home team wins the final in extra time"
EMAIL = "write to jo.smith@example.org for tickets"


def likes_everything(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
    return [1.0] * len(completions)


def test_blocked_get_the_penalty_and_clean_keep_their_reward() -> None:
    reward = guarded_reward(likes_everything)
    out = reward(prompts=["sports:"] * 2, completions=[CLEAN, EMAIL])
    assert out == [1.0, GuardPolicy().safety.blocked_penalty]
    assert reward.stats["blocked"] == 1 and reward.__name__ == "guarded_likes_everything"


def test_redacted_completions_are_capped_and_conversations_are_read() -> None:
    policy = GuardPolicy(safety=SafetyPolicy(pii_action="redact"))
    reward = guarded_reward(likes_everything, policy=policy)
    chat = [[{"role": "assistant", "content": CLEAN}], [{"role": "assistant", "content": EMAIL}]]
    assert reward(prompts=["q", "q"], completions=chat) == [1.0, 0.0]


def test_people_without_training_consent_get_no_reward(tmp_path: Path) -> None:
    store = SQLiteFeedbackStore(tmp_path / "feedback.sqlite")
    store.grant("alice", ["training"], text_sha256="0" * 64)
    store.grant("bob", ["evaluation"], text_sha256="0" * 64)
    reward = guarded_reward(likes_everything, store=store)
    users = ["alice", "bob", "carol"]
    out = reward(prompts=["s:"] * 3, completions=[CLEAN] * 3, user_id=users)
    assert out == [1.0, None, None]
    assert reward.stats["no_consent"] == 2
    with pytest.raises(InputError, match="user_id"):
        reward(prompts=["s:"], completions=[CLEAN])
    store.close()


def test_a_reward_function_of_the_wrong_length_is_an_error() -> None:
    reward = guarded_reward(lambda prompts, completions, **kw: [1.0])
    with pytest.raises(InputError, match="wrong number"):
        reward(prompts=["a", "b"], completions=[CLEAN, CLEAN])
    with pytest.raises(InputError, match="not callable"):
        guarded_reward("reward")  # type: ignore[arg-type]

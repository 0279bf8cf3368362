"""The records that flow between the stages of one guarded cycle.

They are frozen: a stage reads what the previous stage produced and returns a new record, so
what the audit log commits to is exactly what the next stage saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # records are read by commands that never load a model
    import torch

Outcome = Literal["approved", "pending", "rejected"]
Action = Literal["allow", "redact", "escalate", "block"]


@dataclass(frozen=True, slots=True)
class Request:
    """Somebody is about to be shown content: who (a pseudonym), their group, what they asked."""

    subject: str
    group: str
    prompt: str = ""


@dataclass(frozen=True, slots=True)
class Sample:
    """One generated output, before anybody has seen it."""

    sample_id: str
    cycle: int
    subject: str  # pseudonym of the person this output is generated for
    prompt: str
    text: str  # the completion only, decoded
    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What content safety decided about one sample.

    `allow`: shown as is; `redact`: shown as `redacted`; `escalate`: held for a person, not
    shown, not trained on; `block`: never shown, trained on with the penalty reward.
    """

    sample_id: str
    action: Action
    reasons: tuple[str, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)
    redacted: str | None = None  # the completion as it may be shown, when action == "redact"

    @property
    def allowed(self) -> bool:
        """May a person see it (as is or redacted)?"""
        return self.action in ("allow", "redact")


@dataclass(frozen=True, slots=True)
class Feedback:
    """A reward for one sample: a person's rating, or the guard's penalty for blocked output."""

    sample_id: str
    subject: str
    reward: float
    source: Literal["person", "penalty"]
    group: str  # the sensitive attribute used by fairness checks (never the identity)


@dataclass(frozen=True, slots=True)
class Batch:
    """Consented feedback joined with its samples; the only input a learner ever gets.

    `group_keys` groups samples generated for the same request, so a leave-one-out baseline
    compares outputs a person judged side by side.
    """

    cycle: int
    samples: tuple[Sample, ...]
    rewards: tuple[float, ...]
    group_keys: tuple[str, ...]
    feedback: tuple[Feedback, ...]

    def __len__(self) -> int:
        return len(self.samples)


@dataclass(frozen=True, slots=True)
class UpdateProposal:
    """Candidate weights and the statistics of the step that made them; nothing is live yet."""

    cycle: int
    base_sha256: str  # commitment to the weights the proposal starts from
    candidate_sha256: str
    candidate_state: dict[str, torch.Tensor] = field(repr=False)
    optimizer_state: dict[str, Any] = field(repr=False)
    stats: dict[str, float] = field(default_factory=dict)
    advantages: tuple[float, ...] = ()  # per batch sample, in batch order
    layer_change: dict[str, float] = field(default_factory=dict)  # L2 norm of the step per layer


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Outcome of one check on a proposal. `passed=False` is a finding, not an exception."""

    name: str
    passed: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """What the approval gate decided, by which rule, and why."""

    outcome: Outcome
    rule: str
    reasons: tuple[str, ...] = ()

"""The typed schema of every audit entry: one pydantic model per entry type.

The log's envelope (`seq`, `ts`, `type`, `payload`, `prev`, `hash`) is checked by the hash
chain (`audit/log.py`); this module says what each `payload` holds. `AuditLog.append` checks a
payload here before writing it, so no entry the schema does not describe can be written, and
readers (`parse_event`) get typed fields instead of poking into dicts. Models forbid unknown
fields: every writer is ours. Optional fields are ones some writers (or older versions of the
code) leave out. Entries hold only pseudonyms, counts and commitments.

Fields added to a writer after its first version have defaults here (`escalate_threshold`,
`by_backend`, `rng_seed`, ...), so logs of earlier versions of the code still parse.

Schema version 1: `run_started` records it from now on; a log whose `run_started` has none is
version 1 too (the entries written before the field existed already fit these models).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    NonNegativeInt,
    RootModel,
    Tag,
    ValidationError,
)
from pydantic.json_schema import models_json_schema

from guarded_rl.errors import AuditError, InputError, IntegrityError

SCHEMA_VERSION: Literal[1] = 1

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256, 64 hex digits")]
Hex16 = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
Hex32 = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
Subject = Annotated[
    str, Field(pattern=r"^p-[0-9a-f]{32}$", description="a person's pseudonym (never the id)")
]
ReviewerKey = Annotated[
    str, Field(pattern=r"^rk-[0-9a-f]{16}$", description="a reviewer key's fingerprint")
]
ProposalId = Annotated[str, Field(pattern=r"^u[0-9]+$", description="`u` + the update's cycle")]
Cycle = NonNegativeInt
Purpose = Annotated[str, Field(min_length=1)]
# metric values as the log keeps them: NaN and infinities are written as null
Number = float | None


class Payload(BaseModel):
    """Base of every payload model: unknown fields are refused (the writers are ours)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- run lifecycle ---------------------------------------------------------------------------


class OperatorRecord(Payload):
    """Who started or resumed a run: a salted hash of the name, the reviewer key if known, and
    with four-eyes a signature by that key over the run's origin, entry type and previous hash."""

    commitment: Hex32
    reviewer_key: ReviewerKey | None
    proof: Annotated[str, Field(pattern=r"^[0-9a-f]{128}$")] | None = None


class RunStarted(Payload):
    """First entry: the run's id, configuration, policy, start weights and signing key.
    `guarded-rl run` records `config`, `seed`, `policy_sha256`, `store_id` and `torch_threads`;
    a wrapped loop (`GuardedLoop`) records `integration` instead."""

    schema_version: Literal[1] = Field(
        default=SCHEMA_VERSION, description="absent in logs written before it existed: 1"
    )
    run_id: Hex16
    integration: str | None = None
    config: dict[str, Any] | None = None
    policy: dict[str, Any]
    policy_sha256: Sha256 | None = None
    seed: int | None = None
    base_sha256: Sha256
    base_checkpoint_id: Sha256
    versions: dict[str, str | int | bool | None]
    torch_threads: int | None = None
    public_key: Annotated[str, Field(pattern=r"^-----BEGIN PUBLIC KEY-----\n")]
    key_id: Hex16 | None = None  # `audit verify` checks the head's key against it when present
    operator: OperatorRecord | None = None
    store_id: Hex32 | None = None


class RunResumed(Payload):
    """`guarded-rl run --resume`: from which cycle, for how many, from which live weights."""

    from_cycle: Cycle
    cycles: NonNegativeInt
    live_sha256: Sha256
    versions: dict[str, str | int | bool | None]
    operator: OperatorRecord | None = None


class UpdateCounts(Payload):
    """Updates of the session by outcome."""

    applied: NonNegativeInt
    pending: NonNegativeInt
    rejected: NonNegativeInt
    none_proposed: NonNegativeInt
    applied_after_review: NonNegativeInt | None = None


class RunFinished(Payload):
    """Last entry of a session: `guarded-rl run` counts cycles and updates, a loop its steps."""

    outcome: str
    live_sha256: Sha256
    cycles_completed: NonNegativeInt | None = None
    updates: UpdateCounts | None = None
    steps: NonNegativeInt | None = None
    applied: NonNegativeInt | None = None


class CheckpointSaved(Payload):
    """Live weights and optimizer state stored in `checkpoints/` (at start, periodically, at
    the end, before a review, or when a reviewed candidate goes live)."""

    checkpoint_id: Sha256
    model_sha256: Sha256
    with_optimizer: bool
    reason: Literal["start", "periodic", "final", "review_base", "review_applied"]


# --- updates ---------------------------------------------------------------------------------


class CheckRecord(Payload):
    """One check's result on a proposal (probe KL, bias checks, a user's own check)."""

    name: str
    passed: bool
    metrics: dict[str, Any]
    message: str


class Thresholds(Payload):
    """The policy thresholds an explanation of the update quotes."""

    safety_filters: list[str]
    profanity_threshold: float
    escalate_threshold: Number = None
    pii_action: str | None = None
    blocked_penalty: float
    max_step_kl: float
    reject_step_kl: float
    max_param_change: Number = None
    min_group_size: NonNegativeInt
    max_group_share: float
    max_reward_gap: float
    bias_on_fail: str | None = None


class CycleCounts(Payload):
    """What happened to one cycle's outputs before the update (no texts)."""

    generated: NonNegativeInt
    blocked: NonNegativeInt
    redacted: NonNegativeInt
    escalated: NonNegativeInt
    by_action: dict[str, NonNegativeInt]
    by_backend: dict[str, NonNegativeInt] = Field(default_factory=dict)
    blocked_by_reason: dict[str, NonNegativeInt]
    shown: NonNegativeInt
    rated: NonNegativeInt
    liked: NonNegativeInt
    redacted_rewards_capped: NonNegativeInt = 0
    refused_no_consent: NonNegativeInt
    training_samples: NonNegativeInt


class TopSample(Payload):
    """A sample that pushed the update hardest (by pseudonymous id, never its text)."""

    sample_id: str
    reward: float
    advantage: float


class CycleUpdateProposed(Payload):
    """An update proposed by a cycle of `guarded-rl run` (it has `counts`, a batch commitment
    and the samples that pushed hardest)."""

    cycle: Cycle
    rng_seed: int | None = None
    counts: CycleCounts
    batch_sha256: Sha256
    batch_size: NonNegativeInt
    feedback_by_source: dict[str, NonNegativeInt] = Field(default_factory=dict)
    base_sha256: Sha256
    candidate_sha256: Sha256
    stats: dict[str, Number]
    layer_change: dict[str, Number] = Field(default_factory=dict)
    top_samples: list[TopSample] = Field(default_factory=list)
    checks: list[CheckRecord]
    thresholds: Thresholds


class RewardSummary(Payload):
    """The rewards a loop passed to `step`: how many and their mean."""

    count: NonNegativeInt | None = None
    mean: Number = None


class StepUpdateProposed(Payload):
    """An optimizer step of a wrapped training loop (`GuardedLoop`, `GuardCallback`): no cycle
    counts, only the aggregates the loop passed (`rewards`, `screened`)."""

    cycle: Cycle
    base_sha256: Sha256
    candidate_sha256: Sha256
    stats: dict[str, Number]
    rewards: RewardSummary
    screened: dict[str, int] | None = None
    layer_change: dict[str, Number]
    checks: list[CheckRecord]
    thresholds: Thresholds


def _proposal_kind(value: Any) -> str:
    """Logs written before the two shapes were named carry no tag: `counts` tells them apart."""
    if isinstance(value, dict):
        return "cycle" if "counts" in value else "step"
    return "cycle" if isinstance(value, CycleUpdateProposed) else "step"


class UpdateProposed(RootModel[Any]):
    """`update_proposed`: a cycle of `guarded-rl run` (`CycleUpdateProposed`) or a step of a
    wrapped loop (`StepUpdateProposed`). Entries carry no tag: `counts` tells them apart."""

    root: Annotated[
        Annotated[CycleUpdateProposed, Tag("cycle")] | Annotated[StepUpdateProposed, Tag("step")],
        Discriminator(_proposal_kind),
    ]


class CycleSkipped(Payload):
    """A cycle whose batch was empty (nothing to train on): no update was proposed."""

    cycle: Cycle
    rng_seed: int | None
    counts: CycleCounts
    live_sha256: Sha256


class UpdateApproved(Payload):
    """`approver`: `gate:auto` (the gate's rules) or `reviewers` (signed human approvals)."""

    cycle: Cycle
    rule: str
    reasons: list[str]
    approver: Literal["gate:auto", "reviewers"]
    proposal_id: ProposalId | None = None
    approvals: list[ReviewerKey] | None = None


class UpdateRejected(Payload):
    """An update discarded: by the gate, a reviewer, or because it expired or was superseded
    (`rule`)."""

    cycle: Cycle
    rule: str
    reasons: list[str]
    proposal_id: ProposalId | None = None


class UpdatePending(Payload):
    """An update sent to people: its candidate is kept in `checkpoint_id` until decided."""

    cycle: Cycle
    rule: str
    reasons: list[str]
    proposal_id: ProposalId
    base_sha256: Sha256
    candidate_sha256: Sha256
    checkpoint_id: Sha256
    with_optimizer: bool
    approvals_required: Annotated[int, Field(ge=1)]
    expiry_hours: Annotated[float, Field(gt=0)]


class UpdateApplied(Payload):
    """New live weights; `proposal_id` when people approved the update."""

    cycle: Cycle
    model_sha256: Sha256
    proposal_id: ProposalId | None = None


class DecisionBodyRecord(Payload):
    """What a reviewer signed (mirrors `approval.decision.DecisionBody`)."""

    origin: Annotated[str, Field(min_length=1)]
    proposal_id: ProposalId
    candidate_sha256: Sha256
    decision: Literal["approve", "reject"]
    note: str
    time: Annotated[float, Field(gt=0)]
    reviewer: ReviewerKey


class SignedDecisionRecord(Payload):
    body: DecisionBodyRecord
    public_key: Sha256 = Field(description="raw Ed25519 public key, 64 hex digits")
    signature: Annotated[str, Field(pattern=r"^[0-9a-f]{128}$")]


class ReviewDecision(Payload):
    """A reviewer's signed decision on a pending update (signature checked by `audit verify`)."""

    cycle: Cycle
    proposal_id: ProposalId
    decision: SignedDecisionRecord
    role: str
    reviewers_sha256: Sha256 | None
    approvals: NonNegativeInt
    approvals_required: Annotated[int, Field(ge=1)]


# --- history ---------------------------------------------------------------------------------


class Rollback(Payload):
    """`guarded-rl rollback`: the live weights go back to those after update `to_update`."""

    to_update: Cycle
    reason: Annotated[str, Field(max_length=500)]
    model_sha256: Sha256
    checkpoint_id: Sha256
    with_optimizer: bool
    previous_live_sha256: Sha256


class Repair(Payload):
    """`guarded-rl audit repair`: a torn last line removed and/or unsigned entries re-signed."""

    torn_tail_removed_bytes: NonNegativeInt
    torn_seq: NonNegativeInt | None
    resigned_from_seq: NonNegativeInt
    resigned_to_seq: int


class Episodes(Payload):
    """Aggregates of finished episodes of a gymnasium environment (`record_episodes`)."""

    step: NonNegativeInt
    episodes: Annotated[int, Field(ge=1)]
    mean_return: Number
    min_return: Number
    mean_length: Number
    interventions: NonNegativeInt
    terminated: NonNegativeInt


# --- consent and feedback --------------------------------------------------------------------


class ConsentGranted(Payload):
    """A person consented to `purposes` under the consent text with this hash."""

    subject: Subject
    purposes: list[Purpose]
    consent_text_sha256: Sha256


class ConsentRevoked(Payload):
    """A person withdrew every consent (`guarded-rl consent revoke`); `erasure` follows."""

    subject: Subject
    purposes: list[Purpose]


class TrainedUpdate(Payload):
    """An applied update a person's feedback trained, and the weights it made."""

    cycle: Cycle
    model_sha256: Sha256 | None


class Erasure(Payload):
    """A person's data erased (their key destroyed); which updates their feedback trained."""

    subject: Subject
    feedback_rows: NonNegativeInt
    replay_rows: NonNegativeInt
    key_destroyed: bool
    method: str
    trained_in_cycles: list[Cycle]
    applied_updates: list[TrainedUpdate]
    live_updates: list[TrainedUpdate]
    rolled_back_updates: list[TrainedUpdate]
    rollback_target: Cycle | None


class FeedbackImported(Payload):
    """`guarded-rl feedback import`: counts and pseudonyms only, never the ratings' texts."""

    file_sha256: Sha256
    stored: NonNegativeInt
    refused: NonNegativeInt
    refused_lines: list[Annotated[int, Field(ge=1)]]
    groups_dropped: NonNegativeInt
    subjects: NonNegativeInt = Field(description="how many people the stored rows belong to")


class RetentionPurge(Payload):
    """Feedback older than the policy's retention was deleted (run start, `consent purge`)."""

    retention_days: Annotated[int, Field(ge=1)]
    feedback_rows: NonNegativeInt


#: entry type -> the model of its payload
EVENT_MODELS: dict[str, type[BaseModel]] = {
    "run_started": RunStarted,
    "run_resumed": RunResumed,
    "run_finished": RunFinished,
    "checkpoint_saved": CheckpointSaved,
    "update_proposed": UpdateProposed,
    "cycle_skipped": CycleSkipped,
    "update_approved": UpdateApproved,
    "update_rejected": UpdateRejected,
    "update_pending": UpdatePending,
    "update_applied": UpdateApplied,
    "review_decision": ReviewDecision,
    "rollback": Rollback,
    "repair": Repair,
    "episodes": Episodes,
    "consent_granted": ConsentGranted,
    "consent_revoked": ConsentRevoked,
    "erasure": Erasure,
    "feedback_imported": FeedbackImported,
    "retention_purge": RetentionPurge,
}


@dataclass(frozen=True, slots=True)
class Event:
    """An audit entry with its payload parsed into its type's model."""

    seq: int
    ts: float
    type: str
    payload: BaseModel
    prev: str
    hash: str


def validate_payload(
    type_: str, payload: Any, *, seq: int | None = None, file: str | None = None
) -> BaseModel:
    """The payload as its type's model; `AuditError` naming seq, type and field otherwise."""
    where = f"seq {seq}: " if seq is not None else ""
    model = EVENT_MODELS.get(type_)
    if model is None:
        raise AuditError(
            f"{where}unknown audit entry type",
            file=file,
            field="type",
            got=type_[:60],
            expected=f"one of {', '.join(sorted(EVENT_MODELS))}",
        )
    try:
        parsed = model.model_validate(payload, strict=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = error["loc"][1:] if model is UpdateProposed else error["loc"]  # [0]: its shape
        field = ".".join(str(part) for part in loc)
        # the value, cut short by the error's rendering; none for a missing or unknown field
        got = None if error["type"] in ("missing", "extra_forbidden") else error.get("input")
        raise AuditError(
            f"{where}{type_} entry does not fit the schema: {error['msg']}",
            file=file,
            field=f"payload.{field}" if field else "payload",
            got=got,
        ) from None
    return parsed.root if isinstance(parsed, RootModel) else parsed


def parse_event(entry: Any, *, file: str | None = None) -> Event:
    """An `AuditEntry` (or anything with its attributes) as a typed `Event`; an entry in a log
    that does not fit the schema is an `IntegrityError` (the log is not what our code writes)."""
    try:
        payload = validate_payload(entry.type, entry.payload, seq=entry.seq, file=file)
    except AuditError as exc:
        raise IntegrityError(
            exc.message, file=exc.file, field=exc.field, got=exc.got, expected=exc.expected
        ) from None
    return Event(entry.seq, entry.ts, entry.type, payload, entry.prev, entry.hash)


_ENVELOPE = {
    "seq": {"type": "integer", "minimum": 0, "description": "0-based position in the log"},
    "ts": {"type": "number", "description": "Unix time of writing, to the microsecond"},
    "type": {"type": "string", "description": "the entry type: selects the payload model"},
    "payload": {"type": "object"},
    "prev": {
        "type": "string",
        "pattern": "^[0-9a-f]{64}$",
        "description": "hash of the previous entry (64 zeros for the first)",
    },
    "hash": {
        "type": "string",
        "pattern": "^[0-9a-f]{64}$",
        "description": "SHA-256 of the entry's canonical JSON without `hash`",
    },
}


def json_schema(types: list[str] | None = None) -> dict[str, Any]:
    """One JSON Schema document: the entry envelope, and per entry type its payload."""
    chosen = sorted(EVENT_MODELS) if types is None else types
    for name in chosen:
        if name not in EVENT_MODELS:
            raise InputError(
                "unknown audit entry type",
                field="--type",
                got=name[:60],
                expected=f"one of {', '.join(sorted(EVENT_MODELS))}",
            )
    refs, document = models_json_schema(
        [(EVENT_MODELS[name], "validation") for name in chosen],
        ref_template="#/$defs/{model}",
    )
    variants = [
        {
            "properties": {
                "type": {"const": name},
                "payload": refs[(EVENT_MODELS[name], "validation")],
            }
        }
        for name in chosen
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "guarded-rl audit entry",
        "description": "One line of audit.jsonl (canonical JSON, sorted keys).",
        "schema_version": SCHEMA_VERSION,
        "type": "object",
        "properties": _ENVELOPE,
        "required": sorted(_ENVELOPE),
        "additionalProperties": False,
        "oneOf": variants,
        "$defs": document.get("$defs", {}),
    }

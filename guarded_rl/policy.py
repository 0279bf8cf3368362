"""Guard policy files (`guarded_rl/policies/*.toml`, or any TOML file) as strict pydantic models.

A policy says what the guards enforce: which safety filters screen output, which consent
purpose feedback must be covered by, how the learner may move, what the gate approves on its
own. Unknown keys are errors, never ignored: a typo in a safety setting must not silently fall
back to a default.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, Self, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from guarded_rl.errors import InputError, PolicyError

#: The policies shipped inside the package (a wheel has no checkout to read them from).
SHIPPED_DIR = Path(__file__).resolve().parent / "policies"

BUILTIN_FILTERS = ("profanity", "threat", "pii", "blocklist", "detoxify")
DEFAULT_CONSENT_TEXT = (
    "Your ratings may be stored under a pseudonym and used for the purposes you choose: "
    "training the model, evaluating it, and checking it for bias by group. You can withdraw "
    "at any time; your stored feedback is then erased."
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetoxifySettings(_Strict):
    """Where the Detoxify model comes from; offline use needs a local checkpoint and config."""

    model_type: str = Field("original", description="Detoxify model name (downloads if online).")
    checkpoint: str | None = Field(None, description="Local Detoxify checkpoint file.")
    huggingface_config_path: str | None = Field(
        None, description="Local directory with the transformers config and tokenizer."
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="Per-category block thresholds (others: defaults)."
    )


class CustomFilter(_Strict):
    """A user scorer `package.module:function` (text -> score in [0, 1])."""

    callable: str = Field(..., pattern=r"^[\w.]+:\w+$")
    threshold: float = Field(0.5, gt=0.0, le=1.0)
    action: Literal["block", "escalate"] = "block"


class SafetyPolicy(_Strict):
    """Screens every generated output before anyone sees it."""

    # validated before `filters`, which may name its entries
    custom: dict[str, CustomFilter] = Field(
        default_factory=dict, description="User scorers, by the name `filters` lists them under."
    )
    filters: list[str] = Field(
        default=["profanity", "threat", "pii"],
        min_length=1,
        description="Backends every output must pass (profanity, pii, blocklist, detoxify, or a "
        "name under [safety.custom]); an empty list is refused (fail closed).",
    )
    profanity_threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="Block when the profanity probability reaches this."
    )
    escalate_threshold: float | None = Field(
        None, gt=0.0, lt=1.0, description="Hold for a person from this profanity score on."
    )
    pii_action: Literal["block", "redact", "escalate"] = Field(
        "block", description="What personal data in an output leads to."
    )
    blocklist: list[str] = Field(default_factory=list, description="Terms that block.")
    builtin_safe_phrases: bool = Field(
        True,
        description="Hide the shipped benign phrases (names, species, dishes: 'Dick Van Dyke', "
        "'pussy willow') from the profanity and detoxify classifiers.",
    )
    safe_phrases: list[str] = Field(
        default_factory=list,
        description="More benign fixed phrases to hide from the classifiers (matched on "
        "normalized text, whole words; other words in the text still count).",
    )
    on_backend_error: Literal["block", "escalate"] = Field(
        "block", description="What a backend that fails does to the batch (never pass)."
    )
    blocked_penalty: float = Field(
        -1.0, le=0.0, description="Reward a blocked output enters training with (never shown)."
    )
    redacted_reward_cap: float | None = Field(
        0.0,
        le=1.0,
        description="Highest reward a redacted output trains with: a person may like the "
        "redacted form, but the model must not learn to write the personal data (unset: the "
        "rating as given).",
    )
    detoxify: DetoxifySettings = DetoxifySettings()

    @field_validator("filters")
    @classmethod
    def _known_filters(cls, filters: list[str], info: ValidationInfo) -> list[str]:
        custom = info.data.get("custom", {})
        for name in filters:
            if name not in BUILTIN_FILTERS and name not in custom:
                raise ValueError(
                    f"unknown filter '{name}': use one of {', '.join(BUILTIN_FILTERS)} "
                    "or define it under [safety.custom]"
                )
        return filters

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if "blocklist" in self.filters and not [t for t in self.blocklist if t.strip()]:
            raise ValueError("the blocklist filter is on but the blocklist is empty")
        if self.escalate_threshold is not None and (
            self.escalate_threshold >= self.profanity_threshold
        ):
            raise ValueError("escalate_threshold must be below profanity_threshold")
        return self


class ConsentPolicy(_Strict):
    """Feedback trains the model only under consent for this purpose."""

    purpose: Literal["training", "evaluation", "fairness-analysis"] = Field(
        "training", description="Consent purpose feedback must be covered by to train the model."
    )
    retention_days: int | None = Field(
        365,
        ge=1,
        description="Feedback older than this is purged at run start and by `consent purge` "
        "(unset: kept until erased).",
    )
    consent_text: str = Field(
        DEFAULT_CONSENT_TEXT,
        min_length=1,
        description="The consent text people agree to; each grant records its SHA-256.",
    )


class LearnerPolicy(_Strict):
    """Policy-gradient settings: RLOO baseline over K samples per request, KL to a reference."""

    samples_per_prompt: int = Field(4, ge=2, le=64, description="K; RLOO needs at least 2.")
    learning_rate: float = Field(3e-4, gt=0.0, le=1.0, description="AdamW learning rate.")
    kl_coef: float = Field(0.02, ge=0.0, description="Weight of the KL penalty to the reference.")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient clipping norm.")
    max_new_tokens: int = Field(32, ge=1, le=512, description="Tokens generated per sample.")
    temperature: float = Field(1.0, gt=0.0, le=5.0, description="Sampling temperature.")


class FairnessPolicy(_Strict):
    """Bias checks on every update: the feedback that drives it (data check) and what the
    candidate model writes about groups of people (counterfactual probes)."""

    sensitive_feature: str = Field("group", min_length=1)
    min_group_size: int = Field(
        5, ge=1, description="Groups with fewer ratings are reported as too small to compare."
    )
    max_group_share: float = Field(
        0.95, gt=0.0, le=1.0, description="Data check fails when one group holds more of a batch."
    )
    max_reward_gap: float = Field(
        0.5,
        gt=0.0,
        le=2.0,
        description="Data check fails when two groups' mean rewards differ by more than this "
        "beyond sampling noise (the gap's 95% lower bound).",
    )
    window_updates: int = Field(
        10,
        ge=1,
        le=1000,
        description="The data check also pools the ratings of the last N updates and fails when "
        "their reward gap's 95% lower bound exceeds max_reward_gap, so a persistent gap fails "
        "even when each batch alone is too small to show it (1: each batch alone).",
    )
    probe_suite: str | None = Field(
        None,
        description="Counterfactual probe suite (TOML); unset: policies/probes/default.toml.",
    )
    probe_every: int = Field(
        10,
        ge=0,
        description="Run the output probes on every Nth update (1: all; 0: never). A probe of "
        "the default suite costs about as much as 7 cycles of the demo run.",
    )
    max_toxicity_gap: float = Field(
        0.15, gt=0.0, le=1.0, description="Output check fails above this toxicity gap."
    )
    max_toxicity_gap_increase: float = Field(
        0.08, gt=0.0, le=1.0, description="... or when an update widens it by more than this."
    )
    max_sentiment_gap: float = Field(
        0.5, gt=0.0, le=2.0, description="Output check fails above this sentiment gap."
    )
    max_sentiment_gap_increase: float = Field(
        0.15, gt=0.0, le=2.0, description="... or when an update widens it by more than this."
    )
    on_fail: Literal["escalate", "block"] = Field(
        "escalate",
        description="A failed bias check holds the update for a person, or rejects it.",
    )


#: Largest step-KL threshold a policy may set (nats per token): above it nothing is ever
#: rejected for drift, so a larger (or infinite) value only switches the check off.
MAX_KL = 10.0

DEFAULT_PROBE_TEXTS = (
    "politics: Parliament votes on new budget after long debate",
    "business: Shares rise as retailer reports record holiday sales",
    "technology: New phone chip promises longer battery life",
    "science: Researchers map the genome of a deep sea fish",
    "health: Hospital opens new clinic for children in the north",
    "sports: Home team wins the final in extra time",
    "culture: Museum opens exhibition of early photographs",
    "travel: Airline adds summer flights to island resorts",
)


class GatePolicy(_Strict):
    """When an update applies by itself, when it waits for a person, when it is discarded."""

    max_step_kl: float = Field(
        0.01,
        gt=0.0,
        le=MAX_KL,
        allow_inf_nan=False,
        description="Auto-approve when KL(candidate || live) on the probes is below.",
    )
    reject_step_kl: float = Field(
        0.5,
        gt=0.0,
        le=MAX_KL,
        allow_inf_nan=False,
        description="Reject outright when the probe KL reaches this.",
    )
    max_param_change: float = Field(
        0.05,
        gt=0.0,
        description="Auto-approve only when the relative parameter change ||step|| / ||weights|| "
        "is below this too.",
    )
    probe_texts: list[str] = Field(
        default=list(DEFAULT_PROBE_TEXTS),
        min_length=1,
        description="Fixed texts on which the KL between candidate and live model is measured.",
    )
    human_review: Literal["when_needed", "always"] = Field(
        "when_needed",
        description="'when_needed': a person reviews updates a check escalated or whose drift "
        "is over a threshold; 'always': every update waits for a person.",
    )
    review_every: int = Field(
        0, ge=0, description="Also send every Nth proposed update to a person (0: never)."
    )
    approvals_required: int = Field(
        1, ge=1, le=10, description="Approvals by different reviewers an update needs to apply."
    )
    four_eyes: bool = Field(
        True, description="The operator who started the run cannot approve its updates."
    )
    review_expiry_hours: float = Field(
        72.0, gt=0.0, description="A proposal still pending after this long is rejected."
    )
    on_pending: Literal["continue", "wait"] = Field(
        "continue",
        description="While a proposal waits: keep serving the live model and collecting "
        "feedback ('continue'), or pause the loop until it is decided ('wait').",
    )
    wait_timeout_seconds: float = Field(
        3600.0, gt=0.0, description="With on_pending = 'wait': stop the run after this long."
    )
    reviewers: str | None = Field(
        None,
        description="Reviewers file (TOML: name, role, Ed25519 public key per reviewer); "
        "relative to the policy file. Unset: nobody can approve.",
    )
    reviewer_roles: list[str] = Field(
        default=["reviewer"],
        min_length=1,
        description="Roles whose signed decisions the gate accepts.",
    )

    @model_validator(mode="after")
    def _reject_above_approve(self) -> Self:
        if self.reject_step_kl <= self.max_step_kl:
            raise ValueError(
                f"reject_step_kl ({self.reject_step_kl}) must be greater than "
                f"max_step_kl ({self.max_step_kl})"
            )
        return self


class AuditPolicy(_Strict):
    checkpoint_every: int = Field(
        10, ge=1, description="Checkpoint weights + optimizer every Nth applied update."
    )


class GuardPolicy(_Strict):
    """A whole guard policy file."""

    name: str = "default"
    description: str = ""
    safety: SafetyPolicy = SafetyPolicy()
    consent: ConsentPolicy = ConsentPolicy()
    learner: LearnerPolicy = LearnerPolicy()
    fairness: FairnessPolicy = FairnessPolicy()
    gate: GatePolicy = GatePolicy()
    audit: AuditPolicy = AuditPolicy()


def shipped_policies() -> list[str]:
    """Names of the policies shipped in the package (`default`, `strict`, ...)."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.toml"))


def resolve_policy_path(path: str | Path) -> Path:
    """A bare name (`strict`: no directory, no suffix) is a shipped policy; anything else is a
    file path. A file named like a shipped policy is reached as `./strict`."""
    text = str(path)
    if "/" in text or "\\" in text or Path(text).suffix or text in ("", ".", ".."):
        return Path(path)
    names = shipped_policies()
    if text not in names:
        raise PolicyError(
            "no such shipped policy",
            field="policy",
            got=text,
            expected=f"a policy file path or one of: {', '.join(names)}",
        )
    return SHIPPED_DIR / f"{text}.toml"


def load_policy(path: str | Path | None = None) -> GuardPolicy:
    """Read and validate a policy file or a shipped policy by name (`strict`); `None` gives
    the defaults (the shipped `default`)."""
    if path is None:
        return GuardPolicy()
    path = resolve_policy_path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError("no such policy file", file=str(path)) from None
    except OSError as exc:
        raise PolicyError(f"cannot read policy file: {exc.strerror}", file=str(path)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PolicyError("not UTF-8 text", file=str(path), expected="a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"invalid TOML: {exc}", file=str(path)) from None
    policy = parse_policy(data, source=str(path))
    reviewers = policy.gate.reviewers
    if reviewers is not None and not Path(reviewers).is_absolute():
        # a policy and its reviewers file travel together; the run records the resolved path
        resolved = str((path.parent / reviewers).resolve())
        policy = policy.model_copy(
            update={"gate": policy.gate.model_copy(update={"reviewers": resolved})}
        )
    return policy


def parse_policy(data: dict[str, Any], *, source: str = "<policy>") -> GuardPolicy:
    """Validate a policy mapping; the first problem becomes one `PolicyError` line."""
    try:
        return GuardPolicy.model_validate(data)
    except ValidationError as exc:
        raise validation_error_to_input_error(exc, GuardPolicy, source) from None


def validation_error_to_input_error(
    exc: ValidationError,
    model: type[BaseModel],
    source: str | None,
    *,
    error_cls: type[InputError] = PolicyError,
    key_prefix: str = "",
) -> InputError:
    """Turn pydantic's report into one line: file, dotted key, value and what is allowed."""
    errors = exc.errors()
    # an unknown key explains a "missing" one next to it (a typo): name it first
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = [str(part) for part in err["loc"]]
    key = key_prefix + ".".join(loc) if loc else "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = ", ".join(sorted(_fields_at(model, loc[:-1])))
        return error_cls("unknown key", file=source, field=key, expected=f"one of: {allowed}")
    got = err.get("input")
    if isinstance(got, dict):
        got = None
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    message = message[:1].lower() + message[1:]  # the rest may quote values: keep their case
    return error_cls("invalid value", file=source, field=key, got=got, expected=message)


def _fields_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    """Names of the keys allowed at a nested location of `model`, looking through optional
    fields and tables of tables (`dict[str, Model]`, `list[Model]`: their key is skipped)."""
    current: type[BaseModel] = model
    parts = list(loc)
    while parts:
        field = current.model_fields.get(parts.pop(0))
        if field is None:
            return []
        inner, container = _model_inside(field.annotation)
        if inner is None:
            return []
        if container and parts:
            parts.pop(0)  # the table's own key, or the list index
        current = inner
    return list(current.model_fields)


def _model_inside(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model an annotation holds, and whether it holds it in a dict or list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (dict, list):
        inner, _ = _model_inside(args[-1]) if args else (None, False)
        return inner, True
    for arg in args:  # X | None
        inner, container = _model_inside(arg)
        if inner is not None:
            return inner, container
    return None, False

__all__ = [
    "AuditPolicy",
    "ConsentPolicy",
    "CustomFilter",
    "DetoxifySettings",
    "FairnessPolicy",
    "GatePolicy",
    "GuardPolicy",
    "LearnerPolicy",
    "SafetyPolicy",
    "load_policy",
    "parse_policy",
    "shipped_policies",
]

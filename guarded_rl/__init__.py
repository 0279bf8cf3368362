"""guarded-rl: responsible learning from feedback.

Every generate → feedback → update cycle passes content-safety filters, consent-aware feedback
storage, bias checks and a human-approval gate, and lands in a hash-chained audit log.

The public API is listed in `__all__`; heavy dependencies (torch, transformers) load only when
a name that needs them is used. Besides this package's own names, the modules in
`_PUBLIC_MODULES` are for users (each lists its API in `__all__`); every other module is
internal: its names may change without notice (tests/unit/test_public_modules.py keeps the
README, docs and examples to the public ones).
"""

from __future__ import annotations

import importlib
from typing import Any

from guarded_rl.errors import (
    AuditError,
    ConsentError,
    GuardBlockedError,
    GuardedRLError,
    InputError,
    ModelLoadError,
    PolicyError,
)

__version__ = "0.1.0"

#: modules users import from (each with `__all__`); the rest of the package is internal
_PUBLIC_MODULES = (
    "guarded_rl.demo.corpus",
    "guarded_rl.demo.interactive",
    "guarded_rl.demo.users",
    "guarded_rl.integrations.gymnasium",
    "guarded_rl.integrations.rewards",
    "guarded_rl.integrations.torch",
    "guarded_rl.integrations.transformers",
    "guarded_rl.learn.causal_lm",
    "guarded_rl.policy",
    "guarded_rl.runner",
)

_LAZY = {
    "Guard": "guarded_rl.guard",
    "CycleReport": "guarded_rl.guard",
    "GuardPolicy": "guarded_rl.policy",
    "GatePolicy": "guarded_rl.policy",
    "load_policy": "guarded_rl.policy",
    "Request": "guarded_rl.records",
    "Sample": "guarded_rl.records",
    "Verdict": "guarded_rl.records",
    "Feedback": "guarded_rl.records",
    "Batch": "guarded_rl.records",
    "UpdateProposal": "guarded_rl.records",
    "CheckResult": "guarded_rl.records",
    "Decision": "guarded_rl.records",
    "AuditLog": "guarded_rl.audit.log",
    "read_log": "guarded_rl.audit.log",
    "CheckpointStore": "guarded_rl.audit.checkpoints",
    "FilterScreen": "guarded_rl.safety.screen",
    "SQLiteFeedbackStore": "guarded_rl.consent.sqlite_store",
    "FeedbackStore": "guarded_rl.consent.store",
    "PolicyGate": "guarded_rl.approval.gate",
    "GuardedLoop": "guarded_rl.integrations.torch",
    "ReviewDesk": "guarded_rl.approval.queue",
    "SignedDecision": "guarded_rl.approval.decision",
    "sign_decision": "guarded_rl.approval.decision",
    "load_registry": "guarded_rl.approval.reviewers",
    "CausalLMLearner": "guarded_rl.learn.lm_learner",
    "TorchPolicyLearner": "guarded_rl.learn.torch_learner",
    "load_causal_lm": "guarded_rl.learn.causal_lm",
    "RunConfig": "guarded_rl.runner",
    "run": "guarded_rl.runner",
}

__all__ = [
    "AuditError",
    "AuditLog",
    "Batch",
    "CausalLMLearner",
    "CheckResult",
    "CheckpointStore",
    "ConsentError",
    "CycleReport",
    "Decision",
    "Feedback",
    "FeedbackStore",
    "FilterScreen",
    "GatePolicy",
    "Guard",
    "GuardBlockedError",
    "GuardPolicy",
    "GuardedLoop",
    "GuardedRLError",
    "InputError",
    "ModelLoadError",
    "PolicyError",
    "PolicyGate",
    "Request",
    "ReviewDesk",
    "RunConfig",
    "SQLiteFeedbackStore",
    "Sample",
    "SignedDecision",
    "TorchPolicyLearner",
    "UpdateProposal",
    "Verdict",
    "__version__",
    "load_causal_lm",
    "load_policy",
    "load_registry",
    "read_log",
    "run",
    "sign_decision",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'guarded_rl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

"""How far an update moves the model, measured on fixed probe texts (the gate's main input)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from guarded_rl.learn.causal_lm import mean_kl, probe_logprobs
from guarded_rl.records import Batch, CheckResult, UpdateProposal
from guarded_rl.weights import load_state


class ProbeKLCheck:
    """KL(candidate || live) and KL(candidate || reference) on fixed texts.

    Keeps one scratch copy of the model to hold candidate weights, so the live model is never
    touched by a check. The live model's probe distributions are cached per live commitment
    (the proposal's `base_sha256`), the reference's once: one forward pass per check.
    """

    name = "probe_kl"

    def __init__(
        self,
        live: nn.Module,
        tokenizer: object,
        texts: Sequence[str],
        *,
        reference: nn.Module | None = None,
    ) -> None:
        self.live = live
        self.tokenizer = tokenizer
        self.texts = list(texts)
        self._scratch = copy.deepcopy(live).eval()
        self._ref = (
            probe_logprobs(reference, tokenizer, self.texts)[0] if reference is not None else None
        )
        self._live_cache: tuple[str, torch.Tensor] | None = None

    def _live_logprobs(self, live_sha256: str) -> torch.Tensor:
        if self._live_cache is None or self._live_cache[0] != live_sha256:
            self._live_cache = (
                live_sha256,
                probe_logprobs(self.live, self.tokenizer, self.texts)[0],
            )
        return self._live_cache[1]

    def __call__(self, proposal: UpdateProposal, batch: Batch) -> CheckResult:
        load_state(self._scratch, proposal.candidate_state)
        cand, valid = probe_logprobs(self._scratch, self.tokenizer, self.texts)
        live = self._live_logprobs(proposal.base_sha256)
        metrics = {"kl_step": round(mean_kl(cand, live, valid), 6)}
        if self._ref is not None:
            metrics["kl_ref"] = round(mean_kl(cand, self._ref, valid), 6)
        return CheckResult(self.name, passed=True, metrics=metrics, message="measured")

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
    touched by a check. Probe distributions are cached by weight commitment: the candidate of
    an applied proposal is the next live model, so a check costs one forward pass.
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
        self._ref = None
        if reference is not None:
            self._ref = probe_logprobs(reference, tokenizer, self.texts)[0]
        self._cache: dict[str, torch.Tensor] = {}

    def __call__(self, proposal: UpdateProposal, batch: Batch) -> CheckResult:
        live = self._cache.get(proposal.base_sha256)
        if live is None:
            live = probe_logprobs(self.live, self.tokenizer, self.texts)[0]
        load_state(self._scratch, proposal.candidate_state)
        cand, valid = probe_logprobs(self._scratch, self.tokenizer, self.texts)
        self._cache = {proposal.base_sha256: live, proposal.candidate_sha256: cand}
        metrics = {"kl_step": round(mean_kl(cand, live, valid), 6)}
        if self._ref is not None:
            metrics["kl_ref"] = round(mean_kl(cand, self._ref, valid), 6)
        return CheckResult(self.name, passed=True, metrics=metrics, message="measured")

"""The generation stage for causal LMs: K samples per request, ids that name no person."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from guarded_rl.learn.causal_lm import sample_completions
from guarded_rl.policy import LearnerPolicy
from guarded_rl.records import Request, Sample


class LMGenerator:
    def __init__(self, model: nn.Module, tokenizer: object, settings: LearnerPolicy) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings

    def generate(self, requests: Sequence[Request], k: int, cycle: int) -> list[Sample]:
        prompts = [r.prompt for r in requests for _ in range(k)]
        generations = sample_completions(
            self.model,
            self.tokenizer,
            prompts,
            max_new_tokens=self.settings.max_new_tokens,
            temperature=self.settings.temperature,
        )
        samples = []
        for i, gen in enumerate(generations):
            r, j = divmod(i, k)
            samples.append(
                Sample(
                    sample_id=f"c{cycle}-r{r}-k{j}",
                    cycle=cycle,
                    subject=requests[r].subject,
                    prompt=requests[r].prompt,
                    text=gen.text,
                    prompt_ids=gen.prompt_ids,
                    completion_ids=gen.completion_ids,
                )
            )
        return samples

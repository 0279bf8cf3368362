"""What a reviewer reads next to the numbers: the live and the candidate model on the same
prompts, with the same random seed, each output through the run's safety screen.

A reviewer is a person, so the screen applies to them too: a blocked output is shown as
`[blocked: reasons]`, personal data as the redacted form.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from guarded_rl.approval.queue import QueuedProposal


@dataclass(frozen=True, slots=True)
class SamplePair:
    prompt: str
    live: str
    candidate: str


def review_prompts(probe_texts: list[str], n: int) -> list[str]:
    """Prompts from the gate's probe texts: the part up to the first ':' (the demo feed's
    topic, 'politics:'), else the first three words; repeated to `n` if there are fewer."""
    bases = []
    for text in probe_texts:
        head, colon, _ = text.partition(":")
        bases.append(head + ":" if colon else " ".join(text.split()[:3]))
    return [bases[i % len(bases)] for i in range(n)]


def compare_samples(
    run_dir: str | Path, proposal: QueuedProposal, *, n: int = 4, seed: int = 0
) -> list[SamplePair]:
    import torch

    from guarded_rl.learn.causal_lm import sample_completions
    from guarded_rl.records import Sample
    from guarded_rl.runner import open_run
    from guarded_rl.safety.screen import screen_from_policy, shown_form
    from guarded_rl.weights import load_state

    opened = open_run(run_dir, while_written=True)
    history, policy = opened.history, opened.policy
    base_checkpoint = history.checkpoints.get(proposal.base_sha256)
    if base_checkpoint is not None:
        live_state = opened.checkpoints.load_model(base_checkpoint)
    else:  # rebuilt from the nearest checkpoint and the recorded updates
        live_state, _ = opened.rebuilder.state_for(proposal.base_sha256)
    candidate_state = opened.checkpoints.load_model(proposal.checkpoint_id)
    prompts = review_prompts(list(policy.gate.probe_texts), n)
    screen = screen_from_policy(policy.safety)
    shown: dict[str, list[str]] = {}
    for which, state in (("live", live_state), ("candidate", candidate_state)):
        load_state(opened.model, state)
        torch.manual_seed(seed)
        generations = sample_completions(
            opened.model,
            opened.tokenizer,
            prompts,
            max_new_tokens=policy.learner.max_new_tokens,
            temperature=policy.learner.temperature,
        )
        samples = [
            Sample(f"review-{which}-{i}", -1, "reviewer", p, g.text, g.prompt_ids, g.completion_ids)
            for i, (p, g) in enumerate(zip(prompts, generations, strict=True))
        ]
        texts = []
        for sample, verdict in zip(samples, screen.screen(samples), strict=True):
            if verdict.allowed:
                texts.append(shown_form(sample, verdict).text.strip())
            else:
                texts.append(f"[{verdict.action}: {', '.join(verdict.reasons) or 'screened'}]")
        shown[which] = texts
    return [
        SamplePair(p, live, cand)
        for p, live, cand in zip(prompts, shown["live"], shown["candidate"], strict=True)
    ]

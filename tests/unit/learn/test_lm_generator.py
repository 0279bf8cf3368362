"""The generation stage: K samples per request with ids that name the request, not the person."""

from __future__ import annotations

import torch
from torch import nn

from guarded_rl.guard import request_key
from guarded_rl.learn.causal_lm import encode_prompt
from guarded_rl.learn.lm_generator import LMGenerator
from guarded_rl.policy import LearnerPolicy
from guarded_rl.records import Request


def test_k_samples_per_request_with_structured_ids(tiny_lm: tuple[nn.Module, object]) -> None:
    model, tok = tiny_lm
    gen = LMGenerator(model, tok, LearnerPolicy(max_new_tokens=3))
    requests = [Request("u-alice", "A", "sports:"), Request("u-bob", "B", "travel: Cheap")]
    torch.manual_seed(0)
    samples = gen.generate(requests, 3, cycle=7)
    assert [s.sample_id for s in samples] == [
        "c7-r0-k0", "c7-r0-k1", "c7-r0-k2", "c7-r1-k0", "c7-r1-k1", "c7-r1-k2",
    ]  # fmt: skip
    assert [s.subject for s in samples] == ["u-alice"] * 3 + ["u-bob"] * 3
    assert [request_key(s) for s in samples] == ["c7-r0"] * 3 + ["c7-r1"] * 3
    for s in samples:
        assert s.cycle == 7
        assert "u-" not in s.sample_id
        req = requests[0] if s.subject == "u-alice" else requests[1]
        assert s.prompt == req.prompt
        assert s.prompt_ids == tuple(encode_prompt(tok, req.prompt))
        assert 1 <= len(s.completion_ids) <= 3


def test_generation_is_reproducible_with_the_seed(tiny_lm: tuple[nn.Module, object]) -> None:
    model, tok = tiny_lm
    gen = LMGenerator(model, tok, LearnerPolicy(max_new_tokens=4))
    requests = [Request("s", "A", "")]
    torch.manual_seed(9)
    first = gen.generate(requests, 4, cycle=0)
    torch.manual_seed(9)
    assert gen.generate(requests, 4, cycle=0) == first

"""What the Guard costs: the same cycles with the bare learner and with the Guard.

Both loops start from the same weights and use the same readers and per-cycle seeds. Cycles
are interleaved (bare/guard, then guard/bare, ...) so machine noise hits both alike.

    bare loop : generate → every reader rates everything → propose → apply
    Guard     : generate → screen → rate shown → consent → propose → checks → gate →
                seal replay inputs → apply → audit → signed head (+ checkpoint every N)

Prints seconds per cycle for both, their ratio, and the Guard's own stages (screening,
consent, checks, checkpointing, audit) as a share of the bare cycle. The counterfactual bias
probes are left out by default (`--probe-every 0`): they cost more than everything else
together and are measured by `benchmarks/bias.py`; pass `--probe-every 10` to include them.

    python benchmarks/overhead.py [--cycles 20] [--users 24] [--seed 0] [--model DIR]
                                  [--probe-every N]
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from guarded_rl.audit.head import generate_signing_key
from guarded_rl.audit.log import AuditLog
from guarded_rl.audit.signer import HeadSigner
from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
from guarded_rl.demo.users import Population, SimulatedFeedback
from guarded_rl.guard import request_key
from guarded_rl.learn.causal_lm import load_causal_lm
from guarded_rl.learn.lm_generator import LMGenerator
from guarded_rl.learn.lm_learner import CausalLMLearner
from guarded_rl.policy import FairnessPolicy, GuardPolicy
from guarded_rl.records import Batch
from guarded_rl.rundir.paths import HEAD_FILE
from guarded_rl.runner import build_guard, cycle_seed, record_grants

GUARD_ONLY_STAGES = (
    "screen",
    "consent",
    "checks",
    "replay_inputs",
    "audit",
    "checkpoint",
    "sign_head",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--users", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None)
    parser.add_argument("--probe-every", type=int, default=0)
    args = parser.parse_args()

    policy = GuardPolicy(fairness=FairnessPolicy(probe_every=args.probe_every))
    k = policy.learner.samples_per_prompt
    base_model, tokenizer = load_causal_lm(args.model)
    population = Population(200, seed=args.seed)
    readers = SimulatedFeedback(population, seed=args.seed)  # the bare loop: ids, no store

    bare_model = copy.deepcopy(base_model)
    bare_generator = LMGenerator(bare_model, tokenizer, policy.learner)
    bare_learner = CausalLMLearner(bare_model, tokenizer, policy.learner)

    guard_model = copy.deepcopy(base_model)
    workdir = Path(tempfile.mkdtemp(prefix="guarded-rl-bench-"))
    consent = SQLiteFeedbackStore(workdir / "feedback.sqlite")
    guarded_readers = SimulatedFeedback(population, seed=args.seed, pseudonym=consent.pseudonym)
    audit = AuditLog(workdir / "audit.jsonl")
    record_grants(consent, audit, population.consents(), policy.consent.consent_text)
    key = generate_signing_key(workdir.parent / f"{workdir.name}.key")
    signer = HeadSigner(audit, key, "guarded-rl/bench", workdir / HEAD_FILE)
    guard = build_guard(
        guard_model, tokenizer, policy, workdir, guarded_readers, consent, audit, signer=signer
    )

    def bare_cycle(cycle: int) -> float:
        start = time.perf_counter()
        torch.manual_seed(cycle_seed(args.seed, cycle))
        samples = bare_generator.generate(population.requests(cycle, args.users), k, cycle)
        ratings = readers.rate(samples)
        batch = Batch(
            cycle=cycle,
            samples=tuple(samples),
            rewards=tuple(ratings[s.sample_id] for s in samples),
            group_keys=tuple(request_key(s) for s in samples),
            feedback=(),
        )
        bare_learner.apply(bare_learner.propose(batch))
        return time.perf_counter() - start

    def guard_cycle(cycle: int) -> float:
        start = time.perf_counter()
        requests = [
            replace(r, subject=consent.pseudonym(r.subject))
            for r in population.requests(cycle, args.users)
        ]
        guard.run_cycle(cycle, requests, rng_seed=cycle_seed(args.seed, cycle))
        return time.perf_counter() - start

    # one untimed warm-up cycle each (first-call allocations, lazy imports)
    bare_cycle(-1)
    guard_cycle(-1)
    guard.stage_seconds.clear()

    bare_total = guard_total = 0.0
    for cycle in range(args.cycles):
        if cycle % 2 == 0:
            bare_total += bare_cycle(cycle)
            guard_total += guard_cycle(cycle)
        else:
            guard_total += guard_cycle(cycle)
            bare_total += bare_cycle(cycle)
    audit.close()
    consent.close()

    n = args.cycles
    guard_only = sum(guard.stage_seconds[s] for s in GUARD_ONLY_STAGES)
    print(f"cycles: {n}  readers/cycle: {args.users}  samples/cycle: {args.users * k}")
    print(f"bias output probes: every {args.probe_every or 'no'} update(s)")
    print(f"bare loop : {bare_total / n * 1000:8.1f} ms/cycle")
    print(f"guarded   : {guard_total / n * 1000:8.1f} ms/cycle")
    print(f"ratio guarded/bare (wall, interleaved): {guard_total / bare_total:.3f}x")
    print(f"ratio (bare + guard-only stages)/bare: {(bare_total + guard_only) / bare_total:.3f}x")
    print("guard stages, ms/cycle:")
    for stage, seconds in sorted(guard.stage_seconds.items(), key=lambda kv: -kv[1]):
        marker = "  (guard-only)" if stage in GUARD_ONLY_STAGES else ""
        print(f"  {stage:<17}{seconds / n * 1000:8.2f}{marker}")


if __name__ == "__main__":
    main()

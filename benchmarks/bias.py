"""What the counterfactual bias probes cost: probe time per update and its share of the cycle.

Runs guarded cycles of the demo (embedded model, simulated readers) with the output probes on
every update, and reports per update: the whole cycle, the probe within it, and the probe's
share; then the amortised share at the default of probing every 10th update. The first probe
also measures the live model (later ones reuse it: an applied candidate is the next live
model), so it is reported apart; probing every Nth update pays that full cost each time.

    python benchmarks/bias.py [--cycles 4] [--users 24]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from guarded_rl.audit.head import generate_signing_key
from guarded_rl.audit.log import AuditLog
from guarded_rl.audit.signer import HeadSigner
from guarded_rl.consent.sqlite_store import SQLiteFeedbackStore
from guarded_rl.demo.users import Population, SimulatedFeedback
from guarded_rl.learn.causal_lm import load_causal_lm
from guarded_rl.policy import FairnessPolicy, GuardPolicy
from guarded_rl.rundir.paths import HEAD_FILE
from guarded_rl.runner import build_guard, cycle_seed, deterministic_torch, record_grants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--users", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    policy = GuardPolicy(fairness=FairnessPolicy(probe_every=1))
    model, tokenizer = load_causal_lm(None)
    deterministic_torch()
    workdir = Path(tempfile.mkdtemp(prefix="guarded-rl-bias-bench-"))
    store = SQLiteFeedbackStore(workdir / "feedback.sqlite")
    population = Population(200, seed=args.seed)
    readers = SimulatedFeedback(population, seed=args.seed, pseudonym=store.pseudonym)
    audit = AuditLog(workdir / "audit.jsonl")
    record_grants(store, audit, population.consents(), policy.consent.consent_text)
    key = generate_signing_key(workdir.parent / f"{workdir.name}.key")
    signer = HeadSigner(audit, key, "guarded-rl/bias-bench", workdir / HEAD_FILE)
    guard = build_guard(
        model,
        tokenizer,
        policy,
        workdir,
        readers,
        store,
        audit,
        reference=copy.deepcopy(model).eval(),
        signer=signer,
    )

    rows = []
    for cycle in range(args.cycles):
        requests = [
            replace(r, subject=store.pseudonym(r.subject))
            for r in population.requests(cycle, args.users)
        ]
        start = time.perf_counter()
        report = guard.run_cycle(cycle, requests, rng_seed=cycle_seed(args.seed, cycle))
        total = time.perf_counter() - start
        probe = report.checks.get("bias_output", {}).get("probe_seconds")
        if probe is None:
            continue  # no update proposed in this cycle
        rows.append((cycle, total, float(probe)))
        print(f"cycle {cycle}: cycle {total:6.2f} s, of which probes {probe:6.2f} s", flush=True)
    audit.close()
    store.close()
    if len(rows) < 2:
        raise SystemExit("too few updates were proposed to measure; raise --cycles")

    first, later = rows[0], rows[1:]
    probe_s = statistics.median(p for _, _, p in later)
    rest_s = statistics.median(t - p for _, t, p in later)
    suite_prompts = guard.checks[-1].suite.prompt_count  # type: ignore[attr-defined]
    print(f"probe suite: {suite_prompts} prompts")
    print(f"first probe (live and candidate models)          {first[2]:8.2f} s")
    print(f"probe per update (candidate only, median)        {probe_s:8.2f} s")
    print(f"cycle without the probe (median)                 {rest_s:8.2f} s")
    print(f"probe share of a cycle, probing every update     {probe_s / (probe_s + rest_s):8.1%}")
    # every Nth update: the live model was not probed before, so both models are (first row)
    every = GuardPolicy().fairness.probe_every
    amortised = first[2] / (first[2] + every * rest_s)
    print(f"probe share of run time, every {every}th update (default) {amortised:8.1%}")


if __name__ == "__main__":
    main()

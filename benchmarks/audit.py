"""Audit log and checkpoint store figures.

1. append throughput: entries/s written by `AuditLog.append` (update-sized payloads), and
   with a signed head after every 4 entries (what a run does per update);
2. verify throughput: entries/s of `audit verify` (chain, Merkle root, signature) on a log of
   `--entries` entries (default 100,000);
3. checkpoint growth: 50 real AdamW updates of the embedded model in which only the last
   block and the final layer norm train; bytes the store holds vs 50 full copies.

    python benchmarks/audit.py [--entries 100000] [--updates 50]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from guarded_rl.audit.checkpoints import CheckpointStore
from guarded_rl.audit.head import generate_signing_key, write_public_key
from guarded_rl.audit.log import AuditLog
from guarded_rl.audit.signer import HeadSigner
from guarded_rl.commands.verify import verify_run
from guarded_rl.learn.causal_lm import load_causal_lm
from guarded_rl.rundir.paths import HEAD_FILE, PUBLIC_KEY_FILE
from guarded_rl.weights import state_of


def _payload(i: int) -> dict[str, object]:
    """Shaped like an `update_proposed` entry (about 1.3 kB)."""
    return {
        "cycle": i,
        "rng_seed": i * 7,
        "counts": {
            "generated": 96,
            "blocked": i % 4,
            "shown": 96 - i % 4,
            "rated": 90,
            "liked": 40 + i % 9,
            "refused_no_consent": 12,
            "training_samples": 84,
        },
        "batch_sha256": f"{i:064x}",
        "base_sha256": f"{i + 1:064x}",
        "candidate_sha256": f"{i + 2:064x}",
        "stats": {"loss": -0.12, "kl_ref": 0.0031, "grad_norm": 1.7, "mean_reward": 0.41},
        "layer_change": {f"transformer.h.{k}": 0.01 * k for k in range(4)},
        "top_samples": [
            {"sample_id": f"c{i}-r{k}-k0", "reward": 1.0, "advantage": 0.75} for k in range(5)
        ],
        "checks": [
            {
                "name": "probe_kl",
                "passed": True,
                "metrics": {"kl_step": 0.0004},
                "message": "measured",
            }
        ],
    }


def bench_log(entries: int, workdir: Path) -> None:
    run_dir = workdir / "log-run"
    run_dir.mkdir()
    key = generate_signing_key(workdir / "log-run.key")
    write_public_key(run_dir / PUBLIC_KEY_FILE, key.public_key())
    log = AuditLog(run_dir / "audit.jsonl")
    signer = HeadSigner(log, key, "guarded-rl/bench", run_dir / HEAD_FILE)
    start = time.perf_counter()
    for i in range(entries):
        log.append("update_proposed", _payload(i))
    append_s = time.perf_counter() - start
    signer.sign()

    sample = 2000  # appends with a durable signed head every 4 entries (one update's worth)
    start = time.perf_counter()
    for i in range(sample):
        log.append("update_proposed", _payload(i))
        if i % 4 == 3:
            signer.sign()
    signed_s = time.perf_counter() - start
    signer.sign()
    log.close()

    size_mb = (run_dir / "audit.jsonl").stat().st_size / 1e6
    start = time.perf_counter()
    report = verify_run(run_dir)
    verify_s = time.perf_counter() - start
    assert report.ok, report.failure
    total = entries + sample
    print(f"log: {total} entries, {size_mb:.1f} MB")
    print(f"append (flushed, unsigned)   : {entries / append_s:10,.0f} entries/s")
    print(f"append + signed head per 4   : {sample / signed_s:10,.0f} entries/s")
    print(
        f"verify (chain+Merkle+sig)    : {total / verify_s:10,.0f} entries/s "
        f"({verify_s:.2f} s for {total})"
    )


def bench_checkpoints(updates: int, workdir: Path) -> None:
    model, tokenizer = load_causal_lm(None)
    trainable = ("transformer.h.3.", "transformer.ln_f.")
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(trainable))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    ids = torch.tensor([tokenizer.encode("sports: Home team wins the final in extra time")])
    store = CheckpointStore(workdir / "checkpoints")
    full_copy = sum(t.numel() * t.element_size() for t in state_of(model).values())
    store.save(state_of(model), optimizer.state_dict())
    after_first = store.stored_bytes()
    torch.manual_seed(0)
    for _ in range(updates):
        loss = model(input_ids=ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        store.save(state_of(model), optimizer.state_dict())
    changed = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    grown = store.stored_bytes() - after_first
    changed_total = updates * changed * 3  # each update rewrites weights, Adam m and v
    print(f"checkpoints: {updates} updates, {changed / full_copy:.1%} of the weights train")
    print(f"  one full copy of the weights        : {full_copy / 1e6:8.2f} MB")
    print(f"  {updates} full copies                     : {updates * full_copy / 1e6:8.2f} MB")
    print(f"  changed tensors x3 (w, Adam m, v)   : {changed_total / 1e6:8.2f} MB")
    print(
        f"  store grew by                       : {grown / 1e6:8.2f} MB "
        f"(= {grown / changed_total:.3f} x the changed tensors; manifests make the rest)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="guarded-rl-audit-bench-") as tmp:
        bench_log(args.entries, Path(tmp))
        bench_checkpoints(args.updates, Path(tmp))


if __name__ == "__main__":
    main()

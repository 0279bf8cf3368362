"""Shared fixtures: a tiny real GPT-2 built, saved and loaded back offline."""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Runs keep their private keys in the user's key directory ($XDG_DATA_HOME/guarded-rl/keys):
# point it at a temporary folder so the suite (and every CLI it spawns, which inherits the
# environment) never writes into the real home.
_KEYS_HOME = tempfile.mkdtemp(prefix="guarded-rl-test-data-")
os.environ["XDG_DATA_HOME"] = _KEYS_HOME


@pytest.fixture(scope="session", autouse=True)
def hermetic_key_dir() -> object:
    """Every test runs with XDG_DATA_HOME in a temporary folder (set at import, so session
    fixtures and subprocesses have it too); removed at the end of the session."""
    assert os.environ["XDG_DATA_HOME"] == _KEYS_HOME
    yield _KEYS_HOME
    shutil.rmtree(_KEYS_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer GPT-2 (random weights) and a 300-token BPE, written with save_pretrained."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from guarded_rl.demo.build_model import train_tokenizer
    from guarded_rl.demo.corpus import build_corpus

    lines = [h.line for h in build_corpus(400, seed=1)][:200]
    tokenizer = train_tokenizer(lines, vocab_size=300)
    eos = tokenizer.eos_token_id  # type: ignore[attr-defined]
    config = GPT2Config(
        vocab_size=len(tokenizer),  # type: ignore[arg-type]
        n_positions=32,
        n_embd=16,
        n_layer=1,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    torch.manual_seed(1234)
    model = GPT2LMHeadModel(config)
    out = tmp_path_factory.mktemp("tiny_lm")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)  # type: ignore[attr-defined]
    return out


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir: Path) -> tuple[torch.nn.Module, object]:
    """The tiny model loaded through `load_causal_lm` (shared: do not modify it)."""
    from guarded_rl.learn.causal_lm import load_causal_lm

    return load_causal_lm(tiny_model_dir)


@pytest.fixture
def fresh_lm(tiny_lm: tuple[torch.nn.Module, object]) -> tuple[torch.nn.Module, object]:
    """A private copy of the tiny model that a test may train or perturb."""
    model, tokenizer = tiny_lm
    return copy.deepcopy(model), tokenizer

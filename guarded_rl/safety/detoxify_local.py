"""A tiny Detoxify-format checkpoint built locally, so the real `detoxify.Detoxify` loads offline.

`detoxify.Detoxify(checkpoint=..., huggingface_config_path=...)` needs two things on disk:

* a `torch.save`d dict `{"config": ..., "state_dict": ...}` where
  `config["arch"]["args"]` holds exactly `model_type`, `model_name`, `tokenizer_name` and
  `num_classes` (they are passed as keyword arguments), and `config["dataset"]["args"]["classes"]`
  names the outputs; `state_dict` is a plain transformers `state_dict()` (`bert.*`,
  `classifier.*`);
* a directory with `config.json` (whose `num_labels` wins over `num_classes`) and tokenizer files.

Detoxify always calls `<ConfigClass>.from_pretrained(model_type)`, even when given a config
directory, so `model_type` here is the config directory's absolute path: moving that directory
breaks the checkpoint (rebuild it, it takes a second).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from guarded_rl.errors import InputError

#: Detoxify's six output classes, in the order of its `original` model.
DEFAULT_CLASSES: tuple[str, ...] = (
    "toxicity",
    "severe_toxicity",
    "obscene",
    "threat",
    "insult",
    "identity_attack",
)
CHECKPOINT_NAME = "detoxify-local.ckpt"
CONFIG_DIR_NAME = "hf"
MAX_LENGTH = 128

_SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"-:;()"
_WORD_LIST = (
    "a an the i you he she it we they me him her us them my your our their this that "
    "is are was were be been am do does did have has had will would can could should not no "
    "and or but if so to of in on at for with from by about as up out all just very too "
    "what who how why when where here there now then today again more some any every "
    "good great nice kind thanks thank please love like happy helpful friend friends "
    "hello hi welcome day work team people person world story news weather book music "
    "idiot stupid dumb moron loser ugly hate disgusting pathetic worthless trash garbage "
    "kill hurt destroy die dead attack beat shoot threat find "
    "damn hell crap shit fuck fucking"
)
_WORDS = tuple(_WORD_LIST.split())

#: A handful of labeled phrases for the optional quick fit (`train_steps > 0`).
_LABELED: tuple[tuple[str, frozenset[str]], ...] = (
    ("have a nice day", frozenset()),
    ("thanks for the helpful story", frozenset()),
    ("hello friend, welcome to the team", frozenset()),
    ("the weather is good today", frozenset()),
    ("i love this book and the music", frozenset()),
    ("we can work on this again", frozenset()),
    ("please tell me more about the news", frozenset()),
    ("you are kind and happy", frozenset()),
    ("you are an idiot", frozenset({"toxicity", "insult"})),
    ("you are stupid and ugly", frozenset({"toxicity", "insult"})),
    ("what a pathetic worthless loser", frozenset({"toxicity", "insult", "severe_toxicity"})),
    ("i hate you, you moron", frozenset({"toxicity", "insult"})),
    ("i will kill you", frozenset({"toxicity", "threat", "severe_toxicity"})),
    ("we will find you and hurt you", frozenset({"toxicity", "threat"})),
    ("this is shit", frozenset({"toxicity", "obscene"})),
    ("fuck this damn crap", frozenset({"toxicity", "obscene", "severe_toxicity"})),
    ("those people are disgusting trash", frozenset({"toxicity", "identity_attack"})),
    ("i hate them, they are garbage", frozenset({"toxicity", "identity_attack"})),
)


def _vocab() -> dict[str, int]:
    tokens = [*_SPECIAL, *_CHARS, *(f"##{c}" for c in _CHARS), *_WORDS]
    return {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}  # deduplicated, contiguous


def build_tokenizer(max_length: int = MAX_LENGTH) -> object:
    """A lowercasing WordPiece `BertTokenizerFast` over a small word list (+ characters)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast  # type: ignore[attr-defined]  # lazy export

    vocab = _vocab()
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    return BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )


def _fit(model: object, tokenizer: object, classes: Sequence[str], steps: int) -> None:
    """A few full-batch AdamW steps on the labeled phrases (multi-label BCE)."""
    import torch

    texts = [t for t, _ in _LABELED]
    labels = torch.tensor(
        [[1.0 if c in tags else 0.0 for c in classes] for _, tags in _LABELED],
        dtype=torch.float32,
    )
    batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=True)  # type: ignore[operator]  # a Hugging Face object, typed object (no stubs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)  # type: ignore[attr-defined]  # a Hugging Face object, typed object (no stubs)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()  # type: ignore[attr-defined]  # a Hugging Face object, typed object (no stubs)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(**batch).logits, labels)  # type: ignore[operator]  # a Hugging Face object, typed object (no stubs)
        loss.backward()
        optimizer.step()
    model.eval()  # type: ignore[attr-defined]  # a Hugging Face object, typed object (no stubs)


def build_local_checkpoint(
    out_dir: Path,
    *,
    classes: Sequence[str] = DEFAULT_CLASSES,
    seed: int = 0,
    train_steps: int = 0,
) -> tuple[Path, Path]:
    """Write a tiny Detoxify checkpoint and its config/tokenizer dir; return `(ckpt, hf_dir)`.

    A 2-layer BERT (hidden 32) with random weights from `seed`; `train_steps > 0` fits it
    briefly on a few labeled toxic/benign phrases so its scores mean something (a toy, not a
    moderation model). Nothing is downloaded; the global torch RNG is left untouched.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    classes = list(classes)
    if not classes or len(set(classes)) != len(classes):
        raise InputError(
            "Detoxify classes must be non-empty and unique",
            field="classes",
            got=classes,
            expected="e.g. " + ", ".join(DEFAULT_CLASSES),
        )
    out_dir = Path(out_dir)
    hf_dir = (out_dir / CONFIG_DIR_NAME).resolve()
    hf_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    config = BertConfig(  # type: ignore[call-arg]  # num_labels is a PretrainedConfig kwarg
        vocab_size=len(tokenizer),  # type: ignore[arg-type]  # a BertTokenizerFast, typed object
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_LENGTH,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=len(classes),
        id2label=dict(enumerate(classes)),
        label2id={c: i for i, c in enumerate(classes)},
        problem_type="multi_label_classification",
        pad_token_id=tokenizer.pad_token_id,  # type: ignore[attr-defined]  # a Hugging Face object, typed object (no stubs)
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config)
        if train_steps > 0:
            _fit(model, tokenizer, classes, train_steps)
    model.eval()
    config.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)  # type: ignore[attr-defined]  # a Hugging Face object, typed object (no stubs)
    checkpoint = {
        "config": {
            "arch": {
                "args": {
                    # Detoxify resolves the config class from this even with a config dir
                    "model_type": str(hf_dir),
                    "model_name": "BertForSequenceClassification",
                    "tokenizer_name": "BertTokenizerFast",
                    "num_classes": len(classes),
                }
            },
            "dataset": {"args": {"classes": classes}},
        },
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }
    ckpt = out_dir.resolve() / CHECKPOINT_NAME
    torch.save(checkpoint, ckpt)
    return ckpt, hf_dir

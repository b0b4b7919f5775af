"""``model=tiny``: a Qwen3-architecture model with random weights and a locally built tokenizer.

No download. The tokenizer is a byte-level BPE trained on hmx's shipped prompts and rubrics
(digits split one per token, so score labels 1-9 are single tokens), with a ChatML chat
template. Weights come from a fixed seed. The result is saved as safetensors under
``<cache_dir>/tiny-<hash>`` and reused; the hash covers the shape and the corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

from hmx.config import TinyModelConfig
from hmx.resources import PROMPTS_FILE, RUBRICS_DIR
from hmx.rubrics.render import DEFAULT_TEMPLATE

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Qwen2/3's pre-tokenizer pattern: digits are split one per token.
_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _corpus() -> list[str]:
    texts = [DEFAULT_TEMPLATE]
    if PROMPTS_FILE.is_file():
        texts += [json.loads(line)["prompt"] for line in PROMPTS_FILE.read_text(encoding="utf-8").splitlines()]
    texts += [p.read_text(encoding="utf-8") for p in sorted(RUBRICS_DIR.glob("*.yaml"))]
    return texts


def _train_tokenizer(corpus: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        model_max_length=2048,
    )
    return fast


def tiny_fingerprint(shape: TinyModelConfig) -> str:
    digest = hashlib.sha256(json.dumps(asdict(shape), sort_keys=True).encode())
    for text in _corpus():
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()[:12]


def build_tiny(shape: TinyModelConfig, cache_dir: str | os.PathLike) -> Path:
    """Build (or reuse) the tiny model and tokenizer; returns the directory to load from."""
    target = Path(cache_dir).expanduser() / f"tiny-{tiny_fingerprint(shape)}"
    if (target / "model.safetensors").is_file():
        return target
    tokenizer = _train_tokenizer(_corpus(), shape.vocab_size)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        head_dim=shape.head_dim,
        max_position_embeddings=shape.max_position_embeddings,
        initializer_range=shape.initializer_range,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(shape.seed)
        model = Qwen3ForCausalLM(config)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build in a temporary sibling, then rename: concurrent ranks never see a half-written model.
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=target.parent))
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    try:
        staging.rename(target)
    except OSError:  # another process won the race; its copy is identical
        shutil.rmtree(staging, ignore_errors=True)
    return target

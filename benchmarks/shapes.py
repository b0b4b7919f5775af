"""Realistic model shapes with random weights, built from config (no download), and the tiny tokenizer.

The Qwen3 shapes copy the published configs' sizes (layers, widths, heads, the 151,936-token
vocabulary, tied embeddings); the weights are random from a fixed seed. Text is tokenized with
hmx's tiny tokenizer (ids below its ~1k vocabulary), so token counts differ from the real
tokenizer's; every figure is reported per token or as a ratio.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

from hmx.config import TinyModelConfig
from hmx.tiny import build_tiny

# a seconds-on-CPU stand-in with the same structure (and a vocabulary just above the tiny tokenizer's), for tests
TOY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
)
SHAPES: dict[str, dict[str, Any]] = {
    "qwen3-0.6b": dict(
        hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8
    ),
    "qwen3-4b": dict(
        hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8
    ),
    "toy": {**TOY, "vocab_size": 2048},
    # the 0.6B shape's depth and modules at the toy's width: its per-call floor (host work per layer) on any device
    "qwen3-0.6b-narrow": {**TOY, "vocab_size": 2048, "num_hidden_layers": 28},
}
COMMON = dict(vocab_size=151936, head_dim=128, max_position_embeddings=40960, rope_theta=1_000_000.0, rms_norm_eps=1e-6)


def shape_config(name: str, tokenizer_dir: Path, attn_implementation: str = "sdpa") -> Qwen3Config:
    """The named Qwen3 shape, with the tiny tokenizer's special-token ids."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = Qwen3Config(
        **{**COMMON, **SHAPES[name]},
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config._attn_implementation = attn_implementation
    return config


def build_shape(name: str, cache_dir: str | Path, seed: int = 0) -> Path:
    """A model directory for the named shape (random bf16 weights + the tiny tokenizer), cached."""
    tiny = build_tiny(TinyModelConfig(), cache_dir)
    digest = hashlib.sha256(json.dumps([name, SHAPES[name], COMMON, seed, tiny.name]).encode()).hexdigest()[:10]
    target = Path(cache_dir).expanduser() / f"shape-{name}-{digest}"
    if (target / "config.json").is_file():
        return target
    config = shape_config(name, tiny)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model: Any = Qwen3ForCausalLM(config)
        model = model.to(torch.bfloat16)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    staging = Path(tempfile.mkdtemp(prefix=".shape-", dir=target.parent))
    model.save_pretrained(staging, safe_serialization=True)
    AutoTokenizer.from_pretrained(tiny).save_pretrained(staging)
    try:
        staging.rename(target)
    except OSError:  # another process built the same directory
        shutil.rmtree(staging, ignore_errors=True)
    return target

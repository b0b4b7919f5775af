"""A trained run, located and loaded: its config, base model, tokenizer and LoRA adapter.

``hmx chat`` and ``hmx merge`` accept a run directory written by ``hmx train`` (``config.yaml``
+ ``adapter/``) or an adapter directory (``adapter_config.json``). The base model is ``--base``
when given, else the run's ``model`` node (``tiny`` is rebuilt from its shape into
``paths.cache_dir``), else the adapter's ``base_model_name_or_path``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf
from peft import PeftModel
from safetensors import SafetensorError
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from hmx.checkpoints import resume_command
from hmx.config import ConfigError, ModelConfig, PathsConfig, typed_node
from hmx.models import load_model, load_tokenizer, model_config, with_pad_token
from hmx.resume_policy import read_run_config

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"  # the only adapter weights hmx loads (a .bin is a pickle)


@dataclass
class TrainedRun:
    """Where a trained adapter lives and which base model it belongs to."""

    adapter_dir: Path
    model: ModelConfig
    cache_dir: str
    run_dir: Path | None = None  # the run directory, when the adapter came from one
    system_prompt: str | None = None  # the run's data.system_prompt: what the model was trained under

    @property
    def name(self) -> str:
        return (self.run_dir or self.adapter_dir).name


def locate_run(path: str | Path, base: str | None = None, dtype: str | None = None) -> TrainedRun:
    """Resolve RUN_DIR or ADAPTER (and an optional ``--base`` model) without loading weights."""
    source = Path(path).expanduser().resolve()
    if not source.exists():
        raise ConfigError(f"{source}: no such run or adapter directory")
    if (source / ADAPTER_CONFIG).is_file():
        adapter_dir = source
        run_dir = source.parent if (source.parent / "config.yaml").is_file() else None
    elif (source / "config.yaml").is_file():
        adapter_dir, run_dir = source / "adapter", source
        if not (adapter_dir / ADAPTER_CONFIG).is_file():
            hint = " (training failed: see FAILED there)" if (source / "FAILED").is_file() else ""
            if not hint and any(source.glob("checkpoint-*")):
                hint = f" (interrupted: continue it with `{resume_command(source)}`)"
            raise ConfigError(f"{adapter_dir}: run directory has no trained adapter ({ADAPTER_CONFIG} missing){hint}")
    else:
        raise ConfigError(
            f"{source}: neither a run directory (config.yaml, adapter/) nor an adapter ({ADAPTER_CONFIG})"
        )

    model, cache_dir, system_prompt = ModelConfig(), PathsConfig().cache_dir, None
    if run_dir is not None:
        model, cache_dir, system_prompt = _run_settings(run_dir / "config.yaml")
    if base is not None:
        model = ModelConfig(name_or_path=base, tiny=model.tiny) if base == "tiny" else model_config(base)
    elif run_dir is None:
        model = ModelConfig(name_or_path=_adapter_base(adapter_dir))
    if dtype is not None:
        model.dtype = dtype
    return TrainedRun(adapter_dir, model, cache_dir, run_dir, system_prompt)


def _run_settings(config_path: Path) -> tuple[ModelConfig, str, str | None]:
    """The run's model node, tiny-model cache and system prompt, from its ``config.yaml``."""
    cfg = OmegaConf.create(read_run_config(config_path))
    if "model" not in cfg:
        raise ConfigError(f"{config_path}: config field 'model' is missing")
    try:
        model = typed_node(cfg, "model")
        paths = typed_node(cfg, "paths") if "paths" in cfg else PathsConfig()
        system_prompt = typed_node(cfg, "data").system_prompt if "data" in cfg else None
    except ConfigError as err:
        raise ConfigError(f"{config_path}: {err}") from None
    return model, paths.cache_dir, system_prompt


def _adapter_base(adapter_dir: Path) -> str:
    config_path = adapter_dir / ADAPTER_CONFIG
    try:
        base = json.loads(config_path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError) as err:
        raise ConfigError(f"{config_path}: unreadable adapter config: {err}") from None
    if not base:
        raise ConfigError(f"{config_path}: field 'base_model_name_or_path' is empty; pass --base MODEL")
    return str(base)


def load_run_tokenizer(run: TrainedRun) -> PreTrainedTokenizerBase:
    """The tokenizer saved with the adapter (what training used), else the base model's."""
    if (run.adapter_dir / "tokenizer_config.json").is_file():
        return with_pad_token(
            AutoTokenizer.from_pretrained(run.adapter_dir, trust_remote_code=run.model.trust_remote_code)
        )
    return load_tokenizer(run.model, run.cache_dir)


def load_base_model(run: TrainedRun) -> PreTrainedModel:
    return load_model(run.model, run.cache_dir)


def load_adapter_model(run: TrainedRun, device: str | torch.device = "cpu") -> PeftModel:
    """Base weights with the run's LoRA adapter on top (not merged), in eval mode."""
    if not (run.adapter_dir / ADAPTER_WEIGHTS).is_file():
        raise ConfigError(f"{run.adapter_dir}: no {ADAPTER_WEIGHTS}; hmx loads adapter weights from safetensors only")
    base = load_base_model(run)
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)  # peft's call
    try:
        model = PeftModel.from_pretrained(base, str(run.adapter_dir), is_trainable=False)
    except SafetensorError as err:
        raise ConfigError(
            f"{run.adapter_dir / ADAPTER_WEIGHTS}: not a readable safetensors file ({err}); the file is truncated or "
            "corrupt: copy it again, or resume training from a checkpoint"
        ) from None
    except (OSError, ValueError, RuntimeError) as err:
        raise ConfigError(f"{run.adapter_dir}: cannot apply the adapter to {run.model.name_or_path!r}: {err}") from None
    return model.to(device).eval()


def is_run_path(path: str | Path) -> bool:
    """Whether ``path`` is a run directory (``config.yaml``) or an adapter directory, not a model."""
    source = Path(path).expanduser()
    return (source / "config.yaml").is_file() or (source / ADAPTER_CONFIG).is_file()


def run_or_model(name: str, cache_dir: str) -> tuple[ModelConfig, str, TrainedRun | None]:
    """``name`` as a run or adapter directory (its base model and adapter), else a model: a preset of
    conf/model, a hub id, a local model directory or ``tiny`` (no adapter); with the cache directory."""
    if is_run_path(name):
        run = locate_run(name)
        return run.model, run.cache_dir, run
    return model_config(name), cache_dir, None


def load_weights(
    model: ModelConfig, cache_dir: str, adapter: TrainedRun | None, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """The weights to score or evaluate and their tokenizer, in eval mode on ``device``: the base
    model, or with ``adapter`` on top (not merged)."""
    if adapter is not None:
        return load_adapter_model(adapter, device), load_run_tokenizer(adapter)
    weights: torch.nn.Module = load_model(model, cache_dir)
    return weights.to(device).eval(), load_tokenizer(model, cache_dir)


def load_weights_tokenizer(model: ModelConfig, cache_dir: str, adapter: TrainedRun | None) -> PreTrainedTokenizerBase:
    """The tokenizer :func:`load_weights` would give, without the weights."""
    return load_run_tokenizer(adapter) if adapter is not None else load_tokenizer(model, cache_dir)

"""What ``hmx eval`` evaluates: a base model, or a base model with a peft adapter (a training run).

A run directory stands for both (``hmx.runs.locate_run``: its ``config.yaml`` model node and
``adapter/``) and its results go to ``<run>/eval/``; ``adapter=`` puts any adapter on the
``model`` node's weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig
from transformers import PreTrainedTokenizerBase

from hmx.config import ConfigError, ModelConfig, typed_node
from hmx.models import pick_device
from hmx.runs import ADAPTER_CONFIG, TrainedRun, load_weights, locate_run


@dataclass
class EvalTarget:
    model: ModelConfig
    cache_dir: str
    adapter: TrainedRun | None  # None: the base model alone
    out_dir: Path
    label: str


def resolve_target(cfg: DictConfig) -> EvalTarget:
    """Model, adapter and output folder from ``run_dir`` / ``model`` + ``adapter`` / ``output_dir``."""
    cache_dir = typed_node(cfg, "paths").cache_dir
    output_dir = Path(cfg.output_dir).expanduser().resolve() if cfg.get("output_dir") else None
    if cfg.get("run_dir"):
        run = locate_run(cfg.run_dir)
        if cfg.get("adapter"):
            raise ConfigError("config fields 'run_dir' and 'adapter': give one (a run directory holds its adapter)")
        run_dir = run.run_dir or run.adapter_dir
        return EvalTarget(run.model, run.cache_dir, run, output_dir or run_dir / "eval", run_dir.name)
    model = typed_node(cfg, "model")
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    out_dir = output_dir or (Path("outputs/eval") / stamp).resolve()
    if not cfg.get("adapter"):
        return EvalTarget(model, cache_dir, None, out_dir, Path(model.name_or_path).name)
    adapter_dir = Path(cfg.adapter).expanduser().resolve()
    if not (adapter_dir / ADAPTER_CONFIG).is_file():
        raise ConfigError(f"config field 'adapter': {adapter_dir} is not a peft adapter (no {ADAPTER_CONFIG})")
    run = TrainedRun(adapter_dir=adapter_dir, model=model, cache_dir=cache_dir)
    return EvalTarget(model, cache_dir, run, out_dir, f"{Path(model.name_or_path).name}+{adapter_dir.name}")


def load_target(target: EvalTarget) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """The weights to evaluate (adapter on top, not merged) on the GPU when there is one, in eval mode."""
    return load_weights(target.model, target.cache_dir, target.adapter, pick_device("auto"))

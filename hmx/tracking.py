"""Run directories, rank-0 writes, W&B modes, metrics and the reward plot.

One run directory per run: rank 0 names it and broadcasts the name, every rank agrees, and
only rank 0 writes. With ``logger.mode=auto`` W&B follows ``WANDB_MODE`` when the environment sets
it, else runs online when ``WANDB_API_KEY`` is set, offline otherwise
(``wandb sync <run>/wandb/offline-run-*`` later), and not at all with ``logger=none``.
Secrets are never written: config dumps and metrics are redacted (:mod:`hmx.redaction`).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from accelerate import PartialState
from accelerate.utils import broadcast_object_list
from omegaconf import DictConfig, OmegaConf
from transformers import TrainerCallback

from hmx.config import ConfigError, LoggerConfig
from hmx.redaction import REDACTED, redact

__all__ = ["REDACTED", "redact"]  # the resume policy compares redacted configs


def default_run_name() -> str:
    """A timestamp and a 16-bit random suffix: two runs started in one second (a sweep, parallel jobs)
    share a name once in 65,536, where the bare timestamp always collided.

    The suffix comes from the OS, not from the seeded generators, so equal seeds still give different names.
    """
    return f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{secrets.token_hex(2)}"


def agree_run_dir(runs_dir: str, run_name: str | None) -> Path:
    """The run directory every rank uses: named once on rank 0 and broadcast (not created here)."""
    if run_name is not None:
        check_run_name(str(run_name))
    state = PartialState()
    name = [run_name or default_run_name()]
    if state.num_processes > 1:
        broadcast_object_list(name, from_process=0)
    return Path(runs_dir).expanduser().resolve() / str(name[0])


def check_run_name(run_name: str) -> None:
    """A run name is one directory name inside ``paths.runs_dir``: no separator, no ``..``, not absolute."""
    if not run_name or run_name in (".", "..") or "/" in run_name or "\\" in run_name or "\0" in run_name:
        raise ConfigError(
            f"config field 'run_name': {run_name!r} is not a plain directory name; a run lives in "
            "paths.runs_dir/<run_name> (set paths.runs_dir to write elsewhere)"
        )


def is_main_process() -> bool:
    return PartialState().is_main_process


def write_config(cfg: DictConfig, run_dir: Path) -> None:
    """The resolved config, secrets redacted, as ``config.yaml``."""
    resolved = redact(OmegaConf.to_container(cfg, resolve=True))
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(resolved)), encoding="utf-8")


def write_overrides(run_dir: Path) -> None:
    """The command-line overrides of this run (``overrides.yaml``), when Hydra composed the config."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        overrides = list(redact(list(HydraConfig.get().overrides.task)))
        (run_dir / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(overrides)), encoding="utf-8")


def configure_wandb(cfg: LoggerConfig, run_dir: Path, run_name: str) -> list[str]:
    """Set W&B's own settings for this process and return TRL's ``report_to``."""
    if cfg.backend == "none":
        return ["none"]
    mode = cfg.mode
    if mode == "auto":  # the user's WANDB_MODE wins; else online with a key, offline without
        mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    os.environ["WANDB_MODE"] = mode
    os.environ["WANDB_DIR"] = str(run_dir)
    os.environ["WANDB_PROJECT"] = cfg.project
    os.environ["WANDB_NAME"] = run_name
    if cfg.entity:
        os.environ["WANDB_ENTITY"] = cfg.entity
    if cfg.tags:
        os.environ["WANDB_TAGS"] = ",".join(cfg.tags)
    os.environ.setdefault("WANDB_SILENT", "true")
    return ["wandb"]


class MetricsFile(TrainerCallback):
    """Appends every log record to ``metrics.jsonl`` (rank 0) and draws ``rewards.png`` at the end."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "metrics.jsonl"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            record = redact({"step": state.global_step, **{k: v for k, v in logs.items() if _jsonable(v)}})
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.path.is_file():
            plot_rewards(read_metrics(self.path), self.path.parent / "rewards.png")


def _jsonable(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool)) or value is None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_rewards(records: list[dict[str, Any]], out: Path) -> Path | None:
    """Reward and per-criterion rewards against step; returns the PNG path (None without data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in records if "reward" in r]
    if not rows:
        return None
    keys = ["reward"] + sorted({k for r in rows for k in r if k.startswith("rewards/") and k.endswith("/mean")})
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for key in keys:
        points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        if points:
            steps, values = zip(*points, strict=True)
            label = "total (weighted)" if key == "reward" else key.split("/")[1]
            ax.plot(steps, values, marker="." if len(points) < 40 else None, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("reward")
    ax.set_title("Self-judge reward per criterion")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out

"""Run directories, rank-0 writes, W&B modes, metrics and the reward plot (judge, guards, audit panels).

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

import yaml
from accelerate import PartialState
from accelerate.utils import broadcast_object_list
from omegaconf import DictConfig, OmegaConf
from transformers import TrainerCallback

from hmx.config import ConfigError, LoggerConfig
from hmx.redaction import REDACTED, redact
from hmx.rubrics.schema import GUARD_NAMES

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
    """Appends every log record to ``metrics.jsonl`` (rank 0); :meth:`plot` draws ``rewards.png`` from it."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "metrics.jsonl"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            record = redact({"step": state.global_step, **{k: v for k, v in logs.items() if _jsonable(v)}})
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def plot(self) -> None:
        """rewards.png from metrics.jsonl (rank 0; ``hmx train`` calls it once the run's last row is in, the
        audit's final pass after training included)."""
        if self.path.is_file():
            run_dir = self.path.parent
            plot_rewards(read_metrics(self.path), run_dir / "rewards.png", *run_settings(run_dir / "config.yaml"))


def _jsonable(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool)) or value is None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


AUDIT_LINES = {  # audit signal -> the config key of its threshold (docs/training.md#reward-hacking-audit)
    "base_agreement": "min_base_agreement",
    "lexical_index": "max_lexical_index",
    "minimal_accuracy": None,  # its threshold is a drop from its first value
}


def run_settings(config_file: Path) -> tuple[str, dict[str, float]]:
    """The instrument line (model, rubric, judge) and the audit thresholds, from a run's ``config.yaml``."""
    if not config_file.is_file():
        return "", {}
    cfg = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    model, judge = cfg.get("model") or {}, cfg.get("judge") or {}
    rubric = cfg.get("rubric") or {}
    instrument = (
        f"model {Path(str(model.get('name_or_path', '?'))).name}, rubric {Path(str(rubric.get('path', '?'))).stem} "
        f"({rubric.get('direction', 'forward')}), judge {judge.get('source', 'self')}/{judge.get('mode', '?')} "
        f"with {judge.get('weights', '?')} weights"
    )
    audit = cfg.get("audit") or {}
    return instrument, {
        k: float(v) for k, v in audit.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def reward_figure(records: list[dict[str, Any]], instrument: str = "", thresholds: dict[str, float] | None = None):
    """The reward figure: the total, judge criteria, guards, the audit and the reward spread in separate panels.

    A panel is drawn only when its metrics were logged; legends sit to the right of the axes, clear
    of the curves. Returns None without reward rows.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    thresholds = thresholds or {}
    rows = [r for r in records if "reward" in r]
    if not rows:
        return None
    means = sorted({k for r in rows for k in r if k.startswith("rewards/") and k.endswith("/mean")})
    guards = [k for k in means if k.split("/")[1] in GUARD_NAMES]
    audit = [f"audit/{name}" for name in AUDIT_LINES if any(f"audit/{name}" in r for r in records)]
    spread = ["audit/reward_spread"] if any("audit/reward_spread" in r for r in records) else []
    panels = [
        ("Reward: weighted sum of the criteria and guards (what GRPO maximises)", "reward", ["reward"]),
        ("Judge: reward per criterion", "score", [k for k in means if k not in guards]),
        ("Guards: raw penalty (trained on where guards.<name>.weight > 0)", "penalty", guards),
        ("Audit: does the reward read meaning?", "value", audit),
        ("Audit: within-group reward sd / reward range", "spread", spread),
    ]
    panels = [panel for panel in panels if panel[2]]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8.5, 2.3 * len(panels)), dpi=110, sharex=True, squeeze=False)
    for ax, (title, ylabel, keys) in zip(axes[:, 0], panels, strict=True):
        for key in keys:
            source = records if key.startswith("audit/") else rows
            points = [(r["step"], r[key]) for r in source if isinstance(r.get(key), (int, float))]
            if points:
                steps, values = zip(*points, strict=True)
                label = "total (weighted)" if key == "reward" else key.split("/")[1]
                ax.plot(steps, values, marker="." if len(points) < 40 else None, label=label)
        for key in keys:  # the audit's thresholds, dashed, in the colour of their curve
            name = key.split("/")[-1]
            colour = next((line.get_color() for line in ax.get_lines() if line.get_label() == name), "grey")
            limit = thresholds.get(AUDIT_LINES.get(name) or ("min_reward_spread" if name == "reward_spread" else ""))
            if name == "minimal_accuracy" and "max_minimal_drop" in thresholds:  # a drop from its first value
                first = next((r[key] for r in records if isinstance(r.get(key), (int, float))), None)
                limit = None if first is None else first - thresholds["max_minimal_drop"]
            if limit is not None:
                ax.axhline(limit, color=colour, linestyle="--", linewidth=0.8, label=f"{name} threshold")
        if keys == spread:  # a flat line near zero must look like one
            ax.set_ylim(bottom=0.0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    axes[-1, 0].set_xlabel("step")
    if instrument:
        fig.suptitle(instrument, fontsize=9)
    fig.tight_layout()
    return fig


def plot_rewards(
    records: list[dict[str, Any]], out: Path, instrument: str = "", thresholds: dict[str, float] | None = None
) -> Path | None:
    """:func:`reward_figure` saved as a PNG; returns its path (None without data)."""
    import matplotlib.pyplot as plt

    fig = reward_figure(records, instrument, thresholds)
    if fig is None:
        return None
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return out

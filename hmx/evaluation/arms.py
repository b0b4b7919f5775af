"""The arms of a comparison: one evaluated run each, or several runs of one configuration (one per seed).

``hmx compare base fwd-1 fwd-2 fwd-3``                      four arms of one run each
``hmx compare base --arm forward=fwd-1,fwd-2,fwd-3``         two arms: base, and forward over 3 seeds
``hmx compare base fwd-1 fwd-2 fwd-3 --group-seeds``         the same, grouped by training config

``--group-seeds`` puts runs in one arm when their training ``config.yaml`` is the same apart from
``seed``, ``run_name`` and ``resume`` and they were evaluated with the same suite (so ``hmx train -m
seed=1,2,3`` gives one arm); runs without a training config (a base model's eval folder) stay alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hmx.config import ConfigError
from hmx.evaluation.items import Items, load_items
from hmx.evaluation.report import load_results

PER_SEED = ("seed", "run_name", "resume")  # training config fields that differ between the seeds of one arm


@dataclass
class Arm:
    label: str
    runs: list[dict[str, Any]]  # loaded results.json, one per run (seed)
    items: list[dict[str, Items]]  # per-item form of each run's metrics


def parse_arm(spec: str) -> tuple[str, list[str]]:
    """``NAME=RUN[,RUN…]`` → (name, runs)."""
    label, sep, runs = spec.partition("=")
    paths = [run for run in runs.split(",") if run]
    if not sep or not label or not paths:
        raise ConfigError(f"--arm {spec!r}: expected NAME=RUN[,RUN...], e.g. --arm forward=runs/f1,runs/f2")
    return label, paths


def training_key(results: dict[str, Any]) -> str | None:
    """The run's training config without its per-seed fields, and the eval suite; None without a training run."""
    path = Path(results["path"])
    config = path.parent.parent / "config.yaml" if path.parent.name == "eval" else None
    if config is None or not config.is_file():
        return None
    try:
        fields = yaml.safe_load(config.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{config}: not valid YAML: {err}") from None
    if not isinstance(fields, dict):
        raise ConfigError(f"{config}: expected a mapping of config fields")
    kept = {key: value for key, value in fields.items() if key not in PER_SEED}
    return json.dumps([kept, results.get("suite")], sort_keys=True, default=str)


def _group_label(labels: list[str]) -> str:
    """The runs' common name (``fwd-1, fwd-2`` → ``fwd``), else the first run's label."""
    common = os.path.commonprefix(labels).rstrip("-_. ")
    return common if len(labels) > 1 and common else labels[0]


def build_arms(positional: list[str], specs: list[str], labels: list[str] | None, group_seeds: bool) -> list[Arm]:
    """Positional runs (one arm each, or grouped by config) then ``--arm`` specs, in order; labels rename them."""
    groups: list[tuple[str, list[dict[str, Any]]]] = []
    keys: dict[str, int] = {}
    for path in positional:
        results = load_results(path)
        key = training_key(results) if group_seeds else None
        if key is not None and key in keys:
            groups[keys[key]][1].append(results)
            continue
        if key is not None:
            keys[key] = len(groups)
        groups.append((results["label"], [results]))
    groups = [(_group_label([r["label"] for r in runs]), runs) for _, runs in groups]
    for spec in specs:
        label, paths = parse_arm(spec)
        groups.append((label, [load_results(path) for path in paths]))
    if labels:
        if len(labels) != len(groups):
            raise ConfigError(f"--labels: {len(labels)} labels for {len(groups)} arms")
        groups = [(label, runs) for label, (_, runs) in zip(labels, groups, strict=True)]
    names = [label for label, _ in groups]
    if len(set(names)) != len(names):
        raise ConfigError(f"run labels must differ, got {names}; pass --labels base,forward,reverse")
    return [Arm(label, runs, [load_items(results) for results in runs]) for label, runs in groups]

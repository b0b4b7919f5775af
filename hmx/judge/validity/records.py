"""Which judges were measured: the shipped table of validations per (model, rubric, judge mode).

``rubrics/records/validations.yaml`` lists what ``hmx rubric validate`` measured on hmx's own pairs, one entry
per model, rubric and judge mode, with the verdict of the surface bar on each split
(:mod:`hmx.judge.validity.surface_bar`). At start-up ``hmx train`` looks its judge up there
(:func:`startup_note`) and says in one line when it was never validated, naming the command to run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hmx.resources import RUBRICS_DIR

RECORDS = RUBRICS_DIR / "records" / "validations.yaml"


def load_records(path: Path = RECORDS) -> list[dict[str, Any]]:
    """The entries of the validation table ([] when the file is not there)."""
    if not path.is_file():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return list(data.get("validations") or [])


def find_record(records: list[dict[str, Any]], model: str, rubric: str, mode: str) -> dict[str, Any] | None:
    """The entry for this judge: ``model`` is a preset name or the model's ``name_or_path``."""
    for entry in records:
        models = {str(entry.get("model")), str(entry.get("name_or_path"))}
        if model in models and entry.get("rubric") == rubric and entry.get("judge") == mode:
            return entry
    return None


def model_preset(name_or_path: str) -> str:
    """The conf/model preset Hydra composed (``smollm2-135m``) when there is one, else ``name_or_path``."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get("model")
        if choice:
            return str(choice)
    return name_or_path


def startup_note(model: str, rubric: str, mode: str, path: Path = RECORDS) -> str | None:
    """One line for ``hmx train``: None when the judge was validated for this model and rubric."""
    entry = find_record(load_records(path), model, rubric, mode)
    if entry is not None:
        failed = [
            f"{Path(s['pairs']).name}:{s['split']}" if s.get("pairs") else str(s["split"])
            for s in entry.get("splits") or []
            if not s.get("valid")
        ]
        if not failed:
            return None
        return (
            f"hmx train: note: the {mode} judge on {model} for rubric {rubric} is validated ({path.name}) but does not "
            f"clear the surface bar on {', '.join(failed)}; docs/rubrics.md has the figures"
        )
    return (
        f"hmx train: note: the {mode} judge was never validated for model {model} and rubric {rubric}; measure it "
        f"first: hmx rubric validate --judge {mode} --model {model} --rubric {rubric} --pairs PAIRS.jsonl --split test"
    )

"""Which judges were measured: the shipped table of validations, and the recorded checks ``hmx train`` reuses.

``rubrics/records/validations.yaml`` lists what ``hmx rubric validate`` measured on hmx's own pairs, one entry
per model, rubric and judge mode, with the verdict of the surface bar on each split
(:mod:`hmx.judge.validity.surface_bar`). At start-up ``hmx train`` looks its judge up there
(:func:`startup_note`) and says in one line when it was never validated, naming the command to run.

``rubrics/records/judge_checks.yaml`` holds the figures of checks ``hmx train`` itself computed on an
*untrained* judge: the start-up check of ``judge.validate`` (:mod:`hmx.judge.validity.preflight`) and the
audit's step-0 minimal-pair pass (:mod:`hmx.rewards.audit`). Each entry carries the content hashes of
everything its figures depend on (:func:`check_key`): the model's weights as loaded (a merged judge adapter
included) and its tokenizer, the probe head and adapter files, the rubric files, the pair file and split,
the judge's scoring options, the device and autocast dtype, and :data:`CHECK_METHOD`. A run reuses an
entry only when every one of them is equal, and says so, naming the record; anything else is computed
as before. Every run writes the checks it did (computed or reused) to ``judge_checks.yaml`` in its run
directory: appending a computed entry to the shipped file is how a record is made.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import yaml

from hmx.config import JudgeConfig
from hmx.judge.registry import options
from hmx.judge.validity.accuracy import CriterionValidity, Validity
from hmx.judge.validity.surface_bar import BaselineRow, SurfaceBar
from hmx.resources import RUBRICS_DIR

RECORDS = RUBRICS_DIR / "records" / "validations.yaml"
CHECKS = RUBRICS_DIR / "records" / "judge_checks.yaml"
CHECK_METHOD = 1  # bump when what a check computes changes (accuracy, baselines, fluency, the audit's pass)
# the judge options that shape its scores (paths hashed by content); batching, gates and monitors do not
# (key name in a record: the names of the release that wrote the first records -> where the option is now)
SCORING_OPTIONS = {
    "mode": "mode",
    "prefill": "prefill",
    "max_prompt_chars": "max_prompt_chars",
    "max_completion_chars": "max_completion_chars",
    "max_rationale_tokens": "generate.max_rationale_tokens",
    "contrastive_scale": "contrastive.scale",
    "examples_per_criterion": "fewshot.per_criterion",
}


def _option(cfg: JudgeConfig, dotted: str) -> Any:
    """A flat option of ``cfg``, or a mode's (``contrastive.scale``: read through the mode table)."""
    node, _, name = dotted.rpartition(".")
    return getattr(options(cfg, node) if node else cfg, name)


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


def judge_preset(mode: str) -> str:
    """The conf/judge preset Hydra composed (``probe_minimal``) when there is one, else ``judge.mode``: records
    are per preset, since two presets of one mode (two probe heads) are two judges."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get("judge")
        if choice:
            return str(choice)
    return mode


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


def file_digest(path: str | Path | None) -> str | None:
    """sha256 of a file's bytes (None for no file; ``missing`` for a path that is not a file)."""
    if not path:
        return None
    if not Path(path).expanduser().is_file():
        return "missing"
    digest = hashlib.sha256()
    with Path(path).expanduser().open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer as loaded: names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{flat.dtype}|{tuple(flat.shape)}|".encode())
        digest.update(flat.reshape(-1).view(torch.uint8).numpy())  # the bytes in place, no copy
    return digest.hexdigest()


def tokenizer_digest(tokenizer: Any) -> str:
    """sha256 of the tokenizer's vocabulary and rules (its fast backend's JSON) and its chat template."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return hashlib.sha256((text + "\0" + str(getattr(tokenizer, "chat_template", ""))).encode()).hexdigest()


def judge_key(cfg: JudgeConfig, rubric_files: list[str], direction: str, model_name: str) -> dict[str, Any]:
    """The cheap part of a check's key (no weights read): the judge's scoring options and its files' hashes."""
    scoring = {name: _option(cfg, where) for name, where in SCORING_OPTIONS.items()}
    return {
        "method": CHECK_METHOD,
        "model": model_name,
        "judge": scoring,
        "examples": file_digest(options(cfg, "fewshot").examples),
        "head": file_digest(options(cfg, "probe").head),
        "adapter": file_digest(cfg.adapter),
        "rubric": [file_digest(f) for f in rubric_files],
        "direction": direction,
    }


def check_key(judge: dict[str, Any], purpose: str, pairs: str | Path, split: str | None) -> dict[str, Any]:
    """A check's key before the model is looked at: ``judge`` (:func:`judge_key`), what the check is and
    its pairs; :class:`CheckRecords` adds the weights, tokenizer, device and autocast parts."""
    return {**judge, "check": purpose, "pairs": file_digest(pairs), "split": split}


def run_keys(
    cfg: JudgeConfig,
    rubric_files: list[str],
    direction: str,
    model_name: str,
    audit: tuple[str, str | None] | None,
    precision: str,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The keys of ``hmx train``'s two checks: the start-up check of ``judge.validate`` and the audit's step-0
    minimal-pair pass on ``audit`` (file, split), which runs inside the trainer at its mixed ``precision``
    (accelerate autocasts the model's forward); None where the run has no such check or the reward is not
    the self-judge alone."""
    if cfg.source != "self" or cfg.panel:
        return None, None
    judge = judge_key(cfg, rubric_files, direction, model_name)
    startup = check_key(judge, "startup", cfg.validate, cfg.validate_split) if cfg.validate else None
    return startup, ({**check_key(judge, "audit-step-0", *audit), "precision": precision} if audit else None)


def identity_key(model: torch.nn.Module, tokenizer: Any) -> dict[str, Any] | None:
    """The model part of a key: the weights' and tokenizer's hashes; None when the weights are not all here
    (a ZeRO-3 shard holds empty placeholders: no hash of them can tell two models apart)."""
    if any(t.numel() == 0 for t in model.state_dict().values()):
        return None
    return {"weights": weights_digest(model), "tokenizer": tokenizer_digest(tokenizer)}


def device_key(device: torch.device) -> dict[str, Any]:
    """The device type and the autocast dtype in force (training autocasts; the start-up check does not)."""
    autocast = torch.is_autocast_enabled(device.type)
    dtype = str(torch.get_autocast_dtype(device.type)).removeprefix("torch.") if autocast else None
    return {"device": device.type, "autocast": dtype}


def load_checks(path: Path | None = None) -> list[dict[str, Any]]:
    """The recorded checks ([] when the file is not there)."""
    path = path or CHECKS
    if not path.is_file():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return list(data.get("checks") or [])


class CheckRecords:
    """The recorded checks this run may reuse, and the checks it did (for its run directory).

    Built at start-up on the model as loaded, before the trainer wraps it (LoRA renames its weights):
    the weights are hashed then, once, when the run has a check (``keys``) to reuse or to record.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, keys: list[dict[str, Any]], path: Path | None = None):
        self.path = path or CHECKS
        self.entries = load_checks(self.path)
        self.identity = identity_key(model, tokenizer) if keys else None
        self.done: list[dict[str, Any]] = []  # this run's checks, computed or reused

    def find(self, key: dict[str, Any], device: torch.device) -> dict[str, Any] | None:
        """The recorded entry whose key is ``key`` with this model and device, else None."""
        if self.identity is None:
            return None
        full = {**key, **self.identity, **device_key(device)}
        found = next((e for e in self.entries if e.get("key") == full), None)
        if found is not None:
            self.done.append(json.loads(json.dumps({**found, "reused_from": self.name})))
        return found

    @property
    def name(self) -> str:
        """The record's path, relative to the checkout when it is hmx's own (``rubrics/records/…``)."""
        inside = self.path.resolve().is_relative_to(RUBRICS_DIR.parent.resolve())
        return str(self.path.resolve().relative_to(RUBRICS_DIR.parent.resolve())) if inside else str(self.path)

    def keep(self, key: dict[str, Any], device: torch.device, validity: Validity, bar: SurfaceBar | None) -> None:
        """Remember a computed check (for the run directory's ``judge_checks.yaml``); not without weights' hash."""
        if self.identity is not None:
            self.done.append(check_entry({**key, **self.identity, **device_key(device)}, validity, bar))

    def write(self, run_dir: Path) -> None:
        """``judge_checks.yaml`` in the run directory (nothing when no check ran)."""
        if self.done:
            text = yaml.safe_dump({"checks": self.done}, sort_keys=False, allow_unicode=True)
            (run_dir / "judge_checks.yaml").write_text(text, encoding="utf-8")


def check_entry(key: dict[str, Any], validity: Validity, bar: SurfaceBar | None) -> dict[str, Any]:
    """One record entry: the key and the figures (plain YAML types)."""
    figures = json.loads(json.dumps(validity.as_dict()))  # floats, lists and dicts only
    measured = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    entry: dict[str, Any] = {
        "key": json.loads(json.dumps(key)),
        "measured": measured,
        "seconds": round(validity.seconds, 1),
    }
    entry["validity"] = figures
    if bar is not None:
        entry["bar"] = json.loads(json.dumps(bar.as_dict()))
    return entry


def recorded_validity(entry: dict[str, Any]) -> Validity:
    """The :class:`Validity` of a recorded entry."""
    data = dict(entry["validity"])
    criteria = [CriterionValidity(**row) for row in data.pop("criteria")]
    return Validity(criteria=criteria, overall=CriterionValidity(**data.pop("overall")), **data)


def recorded_bar(entry: dict[str, Any]) -> SurfaceBar | None:
    """The :class:`SurfaceBar` of a recorded entry (None when it has none)."""
    if not entry.get("bar"):
        return None
    data = dict(entry["bar"])
    return SurfaceBar(rows=[BaselineRow(**row) for row in data.pop("rows")], **data)

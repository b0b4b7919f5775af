"""The files a run reads, by content: ``RUN/inputs.json`` records the SHA-256 of each local file its config names.

A path in ``config.yaml`` says which file a run used, not what was in it: a rubric edited in place
(same path, new weights and anchors) would go unnoticed. Each run records, next to its config, the
content hash of the rubric (``rubric.path`` and every ``rubric.extra``), the prompt file
(``data.path``, when local), the probe head (``judge.probe.head``), the labelled pair files
(``judge.validate``, ``judge.fewshot.examples``) and the drift probes (``judge.drift_probes``). On resume,
:func:`hmx.resume_policy.input_changes` treats a changed file like a changed config field: refused
for what makes it another experiment (the rubric, the data, the probe, the few-shot examples),
warned and recorded otherwise (the validation pairs, the drift probes).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hmx.config import ConfigError
from hmx.resources import rubric_path

INPUTS_FILE = "inputs.json"
FILE_FIELDS = (
    "data.path",
    "judge.probe.head",
    "judge.validate",
    "judge.fewshot.examples",
    "judge.drift_probes",
)  # by field name; an old run recorded judge.probe, judge.examples (hmx.config.renamed_field)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_files(cfg: DictConfig) -> dict[str, Path]:
    """Config field (``rubric.extra[1]`` for a list entry) -> the local file it names; absent: not a local file."""
    files: dict[str, Path] = {}
    rubric = OmegaConf.select(cfg, "rubric.path")
    if rubric:
        files["rubric.path"] = rubric_path(str(rubric))
    for index, extra in enumerate(OmegaConf.select(cfg, "rubric.extra") or []):
        files[f"rubric.extra[{index}]"] = rubric_path(str(extra))
    for field in FILE_FIELDS:
        value = OmegaConf.select(cfg, field)
        if value:
            files[field] = Path(str(value)).expanduser()
    return {field: path for field, path in files.items() if path.is_file()}


def input_hashes(cfg: DictConfig) -> dict[str, dict[str, str]]:
    """``{field: {"path": ..., "sha256": ...}}`` for every local file the config names."""
    return {field: {"path": str(path), "sha256": sha256(path)} for field, path in input_files(cfg).items()}


def write_inputs(run_dir: Path, hashes: dict[str, dict[str, str]]) -> None:
    (run_dir / INPUTS_FILE).write_text(json.dumps(hashes, indent=2) + "\n", encoding="utf-8")


def read_inputs(run_dir: Path) -> dict[str, Any] | None:
    """A run's recorded hashes; None for a run that recorded none (started before hmx wrote them)."""
    path = run_dir / INPUTS_FILE
    if not path.is_file():
        return None
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: the run's record of its input files cannot be read ({err})") from None
    if not isinstance(recorded, dict):
        raise ConfigError(f"{path}: the run's record of its input files must be a JSON object")
    return recorded

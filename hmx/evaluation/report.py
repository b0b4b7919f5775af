"""Evaluation results on disk: ``results.json`` (what ``hmx compare`` reads), ``results.md``, per-item jsonl.

A metric is ``{"value", "better", "stderr"}``; ``better`` is ``higher``, ``lower`` or ``zero``
(closer to zero is better: BBQ's bias scores). Files are written whole (temporary file, then
rename), after the evaluation has finished.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from hmx.config import ConfigError

RESULTS_FILE = "results.json"
BETTER = ("higher", "lower", "zero")


def jsonable(value: Any) -> Any:
    """NaN and infinities become null (JSON has no NaN), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _write_atomic(path: Path, text: str) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)


def write_report(out_dir: Path, results: dict[str, Any], records: dict[str, list[dict]]) -> Path:
    """``results.json``, ``results.md`` and ``<name>.jsonl`` per record list; returns the results file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in records.items():
        _write_atomic(out_dir / f"{name}.jsonl", "".join(json.dumps(jsonable(row)) + "\n" for row in rows))
    _write_atomic(out_dir / "results.md", markdown(results))
    path = out_dir / RESULTS_FILE
    _write_atomic(path, json.dumps(jsonable(results), indent=2) + "\n")
    return path


def _number(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    """A readable summary: what was evaluated, then one row per metric."""
    lines = [
        f"# hmx eval: {results['label']}",
        "",
        f"- model: `{results['model']}`",
        f"- adapter: `{results['adapter']}`" if results.get("adapter") else "- adapter: none",
        f"- data: `{results['data_dir'] or 'Hugging Face Hub'}`",
        f"- samples: {', '.join(f'{k} {v}' for k, v in results['samples'].items())}",
        f"- time: {results['seconds']:.0f} s",
        "",
        "| metric | value | stderr | better |",
        "|---|---:|---:|---|",
    ]
    for name, metric in results["metrics"].items():
        lines.append(f"| {name} | {_number(metric['value'])} | {_number(metric.get('stderr'))} | {metric['better']} |")
    return "\n".join(lines) + "\n"


def results_path(run: str | Path) -> Path:
    """``results.json`` of a run directory (``<run>/eval/``), an eval folder, or the file itself."""
    path = Path(run).expanduser()
    for candidate in (path, path / RESULTS_FILE, path / "eval" / RESULTS_FILE):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{path}: no {RESULTS_FILE} here or in {path / 'eval'} (run `hmx eval` on it first)")


def load_results(run: str | Path) -> dict[str, Any]:
    """A results file, checked: every metric has a numeric (or null) value and a known direction."""
    path = results_path(run)
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON: {err}") from None
    metrics = results.get("metrics") if isinstance(results, dict) else None
    if not isinstance(metrics, dict):
        raise ConfigError(f"{path}: field 'metrics': missing or not an object")
    for name, metric in metrics.items():
        value = metric.get("value") if isinstance(metric, dict) else None
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"{path}: field 'metrics.{name}.value': must be a number or null, got {value!r}")
        if not isinstance(metric, dict) or metric.get("better") not in BETTER:
            raise ConfigError(f"{path}: field 'metrics.{name}.better': must be one of {BETTER}")
    if "label" in results and not isinstance(results["label"], str):
        raise ConfigError(f"{path}: field 'label': must be a string, got {results['label']!r}")
    results.setdefault("label", path.parent.parent.name if path.parent.name == "eval" else path.parent.name)
    results["path"] = str(path)
    return results

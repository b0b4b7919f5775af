"""The end of ``hmx train``'s report: what the judge was measured to be, and the completions before and after.

Lines only (``hmx/train.py``'s ``report`` prints them): the judge's validity figures from the
start-up check (``judge.validate``) and, for probe mode, what its head was fitted on (the probe
file's own record); then each ``before_after.jsonl`` row, shortened.
"""

from __future__ import annotations

import json
from pathlib import Path

from hmx.config import JudgeConfig
from hmx.judge.registry import options
from hmx.judge.validity.accuracy import Validity

WIDTH = 110


def judge_lines(cfg: JudgeConfig, validity: Validity | None) -> list[str]:
    """The judge, what it was fitted on (probe mode) and its accuracy on held-out pairs (when measured)."""
    lines = [f"  judge           {cfg.mode} mode, {cfg.weights} weights"]
    head = options(cfg, "probe").head
    if cfg.mode == "probe" and head:
        from hmx.judge.modes.probe import load_probe

        info = load_probe(head).info
        fitted = f"{info.get('pairs')} [{','.join(info.get('splits') or ['all'])}]"
        lines.append(
            f"                  head {Path(head).name}: fitted on {info.get('fit_pairs')} pairs of {fitted}, "
            f"layer {info.get('layer')}, cross-validated accuracy {_cv(info):.2f}"
        )
    if validity is None:
        lines.append(
            "                  not validated in this run (judge.validate=PAIRS measures it; hmx rubric validate)"
        )
        return lines
    overall = validity.overall
    split = f", split {cfg.validate_split}" if cfg.validate_split else ""
    words = f"; a bag of words fitted on its pairs {overall.words:.2f}" if overall.words is not None else ""
    lines.append(
        f"                  validity on {overall.pairs} held-out pairs ({cfg.validate}{split}): accuracy "
        f"{overall.accuracy:.2f} [{overall.ci_low:.2f}, {overall.ci_high:.2f}]{words}"
    )
    per = ", ".join(f"{row.criterion} {row.accuracy:.2f}" for row in validity.criteria)
    lines.append(f"                  per criterion: {per}")
    return lines


def _cv(info: dict) -> float:
    scores = info.get("cv_accuracy") or {}
    return float(scores.get(str(info.get("layer")), float("nan")))


def before_after_lines(run_dir: Path) -> list[str]:
    """Each prompt's answers before and after training, one line each, from ``before_after.jsonl``."""
    path = run_dir / "before_after.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = ["", "before → after training (greedy; before_after.md has them in full):"]
    for row in rows:
        lines.append(f"  {_short(row['prompt'])}")
        lines.append(f"    before: {_short(row['before'])}")
        lines.append(f"    after:  {_short(row['after'])}")
    return lines


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= WIDTH else flat[: WIDTH - 1] + "…"

"""``hmx compare --pick RUN``: the checkpoint with the most expression for an accepted loss of truthfulness.

Reads a training run's ``probes.jsonl`` (``probes.steps=N``: TruthfulQA MC1 and sycophancy every N
steps, and once before any update) and ``metrics.jsonl``. At each probed step:

- **expression**: the mean over the rubric's criteria of the judge's raw score (``judge/<c>/score``,
  never flipped, so a reverse run reads the same way) over the logged rows since the previous probe;
- **truthfulness**: ``probes/truthfulqa_mc1/acc``; its drop is measured from the step-0 probe.

Candidates are the steps with a saved checkpoint (``checkpoint-<step>/``) or the final adapter.
The pick is the candidate with the highest expression whose truthfulness drop is at most
``--max-truth-drop`` (absolute accuracy, default 0.02); ``pareto`` marks the steps no other step
beats on both. Written to ``tradeoff.md`` and ``tradeoff.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hmx.config import ConfigError
from hmx.evaluation.probes import PROBES_FILE
from hmx.evaluation.report import jsonable
from hmx.textfiles import json_lines

TRUTH = "probes/truthfulqa_mc1/acc"
FLIP = "probes/sycophancy/are_you_sure_flip_rate"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [row for _, row in json_lines(path, error=ConfigError)]


def tradeoff_rows(run_dir: Path) -> list[dict[str, Any]]:
    """One row per probed step: expression, truthfulness (and its drop), flip rate, the checkpoint if saved."""
    probes_file, metrics_file = run_dir / PROBES_FILE, run_dir / "metrics.jsonl"
    if not probes_file.is_file():
        raise ConfigError(f"{probes_file}: not found (train with probes.steps=N to probe during training)")
    probes = {int(row["step"]): row for row in _jsonl(probes_file)}  # a resumed run: the latest probe of a step
    logged = _jsonl(metrics_file) if metrics_file.is_file() else []
    if 0 not in probes or TRUTH not in probes[0] or probes[0][TRUTH] is None:
        raise ConfigError(f"{probes_file}: no step-0 TruthfulQA probe (probes.truthfulqa must be > 0)")
    final = run_dir / "adapter"
    last = max(probes)
    rows, previous = [], None
    for step in sorted(probes):
        window = [r for r in logged if (previous is None or r["step"] > previous) and r["step"] <= step]
        scores = [v for r in window for k, v in r.items() if k.startswith("judge/") and k.endswith("/score")]
        checkpoint = run_dir / f"checkpoint-{step}"
        where = checkpoint if checkpoint.is_dir() else final if step == last and final.is_dir() else None
        truth = probes[step].get(TRUTH)
        rows.append(
            {
                "step": step,
                "expression": sum(scores) / len(scores) if scores and step > 0 else math.nan,
                "truthfulqa_mc1": truth,
                "truth_drop": probes[0][TRUTH] - truth if truth is not None else math.nan,
                "flip_rate": probes[step].get(FLIP),
                "checkpoint": str(where) if where else None,
            }
        )
        previous = step
    return rows


def pick(rows: list[dict[str, Any]], max_drop: float) -> dict[str, Any] | None:
    """Mark the Pareto steps; the candidate with the most expression within the accepted drop (None: none)."""
    finite = [r for r in rows if math.isfinite(r["expression"]) and math.isfinite(r["truth_drop"])]
    for row in rows:
        row["pareto"] = row in finite and not any(
            o["expression"] >= row["expression"]
            and o["truth_drop"] <= row["truth_drop"]
            and (o["expression"], o["truth_drop"]) != (row["expression"], row["truth_drop"])
            for o in finite
        )
    allowed = [r for r in finite if r["checkpoint"] and r["truth_drop"] <= max_drop]
    return max(allowed, key=lambda r: (r["expression"], -r["truth_drop"])) if allowed else None


def write_pick(run_dir: Path, out_dir: Path, max_drop: float) -> dict[str, Any] | None:
    """The trade-off table and the pick, as tradeoff.md and tradeoff.json in ``out_dir``; prints the pick."""
    rows = tradeoff_rows(run_dir)
    chosen = pick(rows, max_drop)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {"run": str(run_dir), "max_truth_drop": max_drop, "pick": chosen, "steps": rows}
    (out_dir / "tradeoff.json").write_text(json.dumps(jsonable(payload), indent=2) + "\n", encoding="utf-8")
    fmt = lambda v: "n/a" if v is None or not math.isfinite(v) else f"{v:.4f}"  # noqa: E731
    lines = [f"# hmx compare --pick: {run_dir.name}", ""]
    verdict = (
        f"pick: step {chosen['step']} ({chosen['checkpoint']}): expression {fmt(chosen['expression'])}, "
        f"TruthfulQA MC1 {fmt(chosen['truthfulqa_mc1'])} (drop {fmt(chosen['truth_drop'])} <= {max_drop})"
        if chosen
        else f"pick: none (no saved checkpoint within a TruthfulQA MC1 drop of {max_drop})"
    )
    lines += [f"- {verdict}", "", "| step | expression | TruthfulQA MC1 | drop | flip rate | Pareto | checkpoint |"]
    lines.append("|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        cells = [str(r["step"]), fmt(r["expression"]), fmt(r["truthfulqa_mc1"]), fmt(r["truth_drop"])]
        cells += [fmt(r["flip_rate"]), "yes" if r["pareto"] else "", r["checkpoint"] or ""]
        lines.append("| " + " | ".join(cells) + " |")
    (out_dir / "tradeoff.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{verdict}\nhmx: trade-off → {out_dir} (tradeoff.md, tradeoff.json)")
    return chosen

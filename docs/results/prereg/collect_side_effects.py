"""Additions 1 and 2 of docs/preregistration.md into docs/results/prereg/side_effects/: BBQ's per-item files, and
whether each re-trained run is the study's run (its rewards equal step by step to the committed metrics.jsonl).
A call adds the evaluations it is given; the table keeps the rows of runs collected before.

  python docs/results/prereg/collect_side_effects.py --runs outputs/runs --evals outputs/side_effects
  S=docs/results/prereg/side_effects
  hmx compare --arm base=$S/eval/base --arm forward=$(ls -d $S/eval/fwd-* | paste -sd,) \
      --primary bbq/accuracy_disamb --wandb off --out $S/compare
  hmx compare --arm base=$S/eval/base --arm reverse=$(ls -d $S/eval/rev-* | paste -sd,) \
      --primary bbq/accuracy_disamb --wandb off --out $S/compare_reverse
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "side_effects"
EVAL_FILES = ("results.json", "results.md", "bbq.jsonl")


def rewards(path: Path) -> list[float]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row["reward"] for row in rows if "reward" in row]  # the last row is the run's summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="the re-trained runs (fwd-sS, rev-sS)")
    parser.add_argument("--evals", type=Path, required=True, help="their BBQ evaluations and the base's")
    args = parser.parse_args()
    table = OUT / "reproduced.md"
    rows = {line.split("|")[1].strip(): line for line in table.read_text().splitlines()[2:]} if table.is_file() else {}
    for folder in sorted(p for p in args.evals.iterdir() if (p / "results.json").is_file()):
        (OUT / "eval" / folder.name).mkdir(parents=True, exist_ok=True)
        for name in EVAL_FILES:
            shutil.copy2(folder / name, OUT / "eval" / folder.name / name)
        if folder.name == "base":
            continue
        new, old = (
            rewards(args.runs / folder.name / "metrics.jsonl"),
            rewards(HERE / "runs" / folder.name / "metrics.jsonl"),
        )
        rows[folder.name] = f"| {folder.name} | {len(new)} | {'yes' if new == old else 'no'} |"
    lines = ["| run | steps | rewards equal to the study's run, step by step |", "|---|---:|---|"]
    lines += [rows[name] for name in sorted(rows)]
    table.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

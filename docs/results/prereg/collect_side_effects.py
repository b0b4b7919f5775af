"""Addition 1 of docs/preregistration.md into docs/results/prereg/side_effects/: BBQ's per-item files, and whether
each re-trained run is the study's run (its rewards equal step by step to the committed metrics.jsonl).

  python docs/results/prereg/collect_side_effects.py --runs outputs/runs --evals outputs/side_effects
  hmx compare --arm base=docs/results/prereg/side_effects/eval/base \
      --arm forward=$(ls -d docs/results/prereg/side_effects/eval/fwd-* | paste -sd,) \
      --primary bbq/accuracy_disamb --wandb off --out docs/results/prereg/side_effects/compare
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
    parser.add_argument("--runs", type=Path, required=True, help="the re-trained runs (fwd-sS)")
    parser.add_argument("--evals", type=Path, required=True, help="their BBQ evaluations and the base's")
    args = parser.parse_args()
    lines = ["| run | steps | rewards equal to the study's run, step by step |", "|---|---:|---|"]
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
        lines.append(f"| {folder.name} | {len(new)} | {'yes' if new == old else 'no'} |")
    (OUT / "reproduced.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

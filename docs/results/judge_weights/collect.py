"""Issue #27 item 8: `judge.weights` chosen by the audit (docs/rubrics.md, "Choosing `judge.weights` by the audit").

  python docs/results/judge_weights/collect.py --runs DIR   # copy base-sS/metrics.jsonl and config.yaml, then table
  python docs/results/judge_weights/collect.py              # the table from the copies

The `base` arm: runs/base-sS (forward, `judge.weights=base`); the `policy` arm: the study's forward runs with the
same seeds (docs/results/prereg/runs/fwd-sS). Writes table.md: each run's audit signals, each arm's means, and
the rule's verdict.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

from hmx.config import AuditConfig
from hmx.rewards.audit import AuditThresholds

HERE = Path(__file__).resolve().parent
POLICY_RUNS = HERE.parent / "prereg" / "runs"
LEXICAL_MARGIN = 0.02  # the rule: base is chosen when its mean lexical index is lower by at least this


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def values(rows: list[dict], key: str) -> list[float]:
    return [row[key] for row in rows if row.get(key) is not None]


def signals(run: Path) -> dict[str, float | str]:
    """One run's audit signals, and the thresholds it crossed (the end-of-run summary's rule)."""
    rows = records(run)
    thresholds = AuditThresholds(AuditConfig())
    for row in rows:
        thresholds.update(int(row.get("step", 0)), row)
    minimal = values(rows, "audit/minimal_accuracy")
    return {
        "lexical": statistics.fmean(values(rows, "audit/lexical_index")),
        "lexical_max": max(values(rows, "audit/lexical_index")),
        "minimal_change": minimal[-1] - minimal[0],
        "agreement_last": values(rows, "audit/base_agreement")[-1],
        "spread": statistics.fmean(values(rows, "audit/reward_spread")),
        "reward_change": statistics.fmean(values(rows, "reward")[-5:]) - statistics.fmean(values(rows, "reward")[:5]),
        "crossed": ", ".join(sorted(thresholds.crossed)) or "none",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, help="where the base-weights runs are (copied into runs/)")
    args = parser.parse_args()
    if args.runs:
        for run in sorted(args.runs.glob("base-s*")):
            if (run / "metrics.jsonl").is_file():
                (HERE / "runs" / run.name).mkdir(parents=True, exist_ok=True)
                for name in ("metrics.jsonl", "config.yaml"):
                    shutil.copy2(run / name, HERE / "runs" / run.name / name)
    seeds = sorted(p.name.removeprefix("base-s") for p in (HERE / "runs").glob("base-s*"))
    arms = {
        "policy": {s: signals(POLICY_RUNS / f"fwd-s{s}") for s in seeds},
        "base": {s: signals(HERE / "runs" / f"base-s{s}") for s in seeds},
    }
    lines = [
        "| arm | seed | lexical index (mean; max) | policy judge on minimal dev pairs (last - first) "
        "| agreement with the frozen judge (last) | reward spread (mean) | reward change (last 5 steps - first 5) "
        "| thresholds crossed |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for arm, runs in arms.items():
        for seed, r in runs.items():
            lines.append(
                f"| {arm} | {seed} | {r['lexical']:.3f}; {r['lexical_max']:.3f} | {r['minimal_change']:+.3f} "
                f"| {r['agreement_last']:.3f} | {r['spread']:.3f} | {r['reward_change']:+.2f} | {r['crossed']} |"
            )
    mean = {
        arm: {k: statistics.fmean(r[k] for r in runs.values()) for k in ("lexical", "minimal_change", "spread")}
        for arm, runs in arms.items()
    }
    for arm in arms:
        m = mean[arm]
        lines.append(
            f"| **{arm} (mean)** | {len(seeds)} seeds | {m['lexical']:.3f} | {m['minimal_change']:+.3f} "
            "| | "
            f"{m['spread']:.3f} | | |"
        )
    warned = [s for s, r in arms["policy"].items() if r["crossed"] != "none"]
    lower = mean["policy"]["lexical"] - mean["base"]["lexical"]
    choice = "base" if warned or lower >= LEXICAL_MARGIN else "policy"
    lines += [
        "",
        f"Rule: policy runs with an audit warning: {', '.join(warned) or 'none'}; the base arm's mean lexical index "
        f"is below the policy arm's by {lower:+.3f} (base chosen at >= {LEXICAL_MARGIN}). **Choice: `{choice}`.**",
    ]
    (HERE / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

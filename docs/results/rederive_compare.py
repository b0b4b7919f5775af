"""Re-derive the pilot's three-seed figures (docs/results/pilot.md) with today's ``hmx compare`` from its per-seed values.

The evaluation folders of 2026-11-27 (outputs/eval72, the 300-item BBQ pass) were not committed,
so their per-item files are gone; docs/results/pilot.md kept some metrics' values per seed (rounded to
the digits printed there). The seed-level test needs only those: this script writes one
results.json per run with them and runs the real ``hmx compare`` (t over seeds on each seed's
change against the base run, ``--primary expression/external/overall``, Holm for the rest).

    python docs/results/rederive_compare.py            # prints both comparisons' comparison.md
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from hmx.commands.compare import main

# pass → metric → (better, base, forward seeds 42-44, reverse seeds 42-44); None: not recorded per seed
PASSES = {
    "72 items a benchmark, 48 prompts": {
        "expression/external/overall": ("higher", 2.36, [2.83, 2.57, 2.53], [2.26, 2.30, 1.83]),
        "bbq/disamb_bias_score": ("zero", 0.067, None, [-0.20, -0.13, -0.20]),
    },
    "BBQ, 300 items": {
        "bbq/accuracy_amb": ("higher", 0.313, [0.29, 0.29, 0.26], None),
        "bbq/disamb_bias_score": ("zero", 0.048, None, [0.02, 0.02, 0.03]),
    },
}


def write(folder: Path, label: str, metrics: dict[str, tuple[str, float]]) -> str:
    folder.mkdir(parents=True)
    body = {"label": label, "metrics": {k: {"value": v, "better": b} for k, (b, v) in metrics.items()}}
    (folder / "results.json").write_text(json.dumps(body), encoding="utf-8")
    return str(folder)


def rederive(name: str, metrics: dict, root: Path) -> str:
    base = write(root / "base", "base", {k: (b, v) for k, (b, v, _, _) in metrics.items()})
    arms = []
    for arm, column in (("forward", 2), ("reverse", 3)):
        runs = [
            write(
                root / f"{arm}-{seed}",
                f"{arm}-{seed}",
                {k: (row[0], row[column][i]) for k, row in metrics.items() if row[column]},
            )
            for i, seed in enumerate((42, 43, 44))
        ]
        arms += ["--arm", f"{arm}=" + ",".join(runs)]
    primary = ["--primary", "expression/external/overall"] if "expression/external/overall" in metrics else []
    main([base, *arms, *primary, "--wandb", "off", "--out", str(root / "cmp")])
    return f"## {name}\n\n" + (root / "cmp" / "comparison.md").read_text(encoding="utf-8")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        texts = [rederive(name, metrics, Path(tmp) / str(i)) for i, (name, metrics) in enumerate(PASSES.items())]
    sys.stdout.write("\n".join(texts))

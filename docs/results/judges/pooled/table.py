"""The third test's table (docs/rubrics.md, "A third test, and one head fitted on every register") from the
committed outputs in out/ (`measure.sh` writes them), in the blind test's columns.

  python docs/results/judges/pooled/table.py   (writes table.md beside this file)
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEC = importlib.util.spec_from_file_location("blind_collect", HERE.parent / "blind" / "collect.py")
assert SPEC is not None and SPEC.loader is not None
blind = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(blind)
blind.TARGET["test"] = 0.90  # the main file's ordinary test split (#27 item 5)
OUTPUTS = ("pooled", "pooled.main_test", "probe_style", "probe_minimal", "probe")


def main() -> int:
    lines = [
        "| judge | split | pairs | accuracy [95% CI] | feel / int / self | best surface baseline "
        "| fluency (prefers rejected) | margin [95% CI] | verdict | target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in OUTPUTS:
        splits = json.loads((HERE / "out" / f"{name}.json").read_text())
        splits = splits if isinstance(splits, list) else [splits]  # one --split: one object
        lines += [blind.row(name.split(".")[0], split) for split in splits]
    (HERE / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The fitting data of the pooled probe head (docs/rubrics.md, "A third test, and one head fitted on
every register"): every labelled pair of the project that no target below is measured on, in one file, `split: dev`.

Kept out: the main file's `test` split (the ordinary test) and the third test file, `hmx_feel.blind2.pairs.jsonl`.
Each row's `note` names its source file and split.

  python docs/results/judges/pooled/pool.py     # writes pool.pairs.jsonl beside this script
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUBRICS = HERE.parents[3] / "rubrics"
SOURCES = {  # file under rubrics/ -> the splits pooled
    "hmx_feel.pairs.jsonl": ("dev",),
    "hmx_feel.minimal.pairs.jsonl": ("dev", "test"),
    "hmx_feel.shift.pairs.jsonl": ("shift", "swap", "minimal"),
    "hmx_feel.blind.pairs.jsonl": ("minimal", "shift", "swap"),
    "train/hmx_feel.style.pairs.jsonl": ("dev",),
    "train/hmx_feel.generated.pairs.jsonl": ("dev",),
}
KEYS = ("prompt", "criterion", "chosen", "rejected")


def pooled() -> list[dict[str, str]]:
    out = []
    for name, splits in SOURCES.items():
        for line in (RUBRICS / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else None
            if row and row.get("split") in splits:
                out.append({**{k: row[k] for k in KEYS}, "split": "dev", "note": f"{name}:{row['split']}"})
    return out


def main() -> int:
    rows = pooled()
    out = HERE / "pool.pairs.jsonl"
    out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    print(f"{out}: {len(rows)} pairs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

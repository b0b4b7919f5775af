"""The data of the pooled tuned judge (docs/rubrics.md, "A tuned judge on every register, decided on another
author"): the pooled head's fitting pairs less the blind file, as `split: dev` (fitted on), and the blind file's
minimal pairs, written by authors none of the fitted pairs come from, as `split: heldout` (they pick the epoch and
decide whether a test is worth writing). Nothing here is a test split.

  python docs/results/judges/tuned_pooled/split.py     # writes pairs.jsonl beside this script
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
POOL = HERE.parent / "pooled" / "pool.pairs.jsonl"
BLIND = HERE.parents[3] / "rubrics" / "hmx_feel.blind.pairs.jsonl"
KEYS = ("prompt", "criterion", "chosen", "rejected")


def rows() -> list[dict[str, str]]:
    pool = [json.loads(line) for line in POOL.read_text(encoding="utf-8").splitlines() if line.strip()]
    fit = [{**r, "split": "dev"} for r in pool if not r["note"].startswith(BLIND.name + ":")]
    blind = [json.loads(line) for line in BLIND.read_text(encoding="utf-8").splitlines() if line.strip()]
    held = [
        {**{k: r[k] for k in KEYS}, "split": "heldout", "note": f"{BLIND.name}:minimal"}
        for r in blind
        if r["split"] == "minimal"
    ]
    shared = {r["prompt"] for r in fit} & {r["prompt"] for r in held}
    if shared:
        raise SystemExit(f"{len(shared)} messages in both parts")
    return fit + held


def main() -> int:
    out = HERE / "pairs.jsonl"
    data = rows()
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in data), encoding="utf-8")
    count = {s: sum(r["split"] == s for r in data) for s in ("dev", "heldout")}
    print(f"{out}: {count['dev']} fit pairs (dev), {count['heldout']} held-out pairs (heldout)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

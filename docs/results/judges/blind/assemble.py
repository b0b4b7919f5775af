"""rubrics/hmx_feel.blind.pairs.jsonl from the candidates in this folder (its datasheet says how they were written).

Minimal candidates (the same words in both replies, each with the reply SmolLM2-135M's fluency prefers, measured
before any judge saw them): per criterion every pair where fluency prefers the rejected reply, and as many others
at random (seed 29) as balance or a floor of 30 pairs per criterion asks. Shift candidates: every row, split by its
note (`shift`, `swap`).

  python docs/results/judges/blind/assemble.py
  python docs/results/judges/blind/assemble.py --folder docs/results/judges/blind2 --seed 34 \
      --out rubrics/hmx_feel.blind2.pairs.jsonl     # the third test file, the same way
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parents[3] / "rubrics" / "hmx_feel.blind.pairs.jsonl"
CRITERIA = ("feelings", "intentions", "self_awareness")
FLOOR = 30


def read(paths: list[Path]) -> list[dict]:
    return [json.loads(line) for p in paths for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


def minimal_rows(folder: Path, seed: int) -> list[dict]:
    rng, out = random.Random(seed), []
    candidates = read(sorted(folder.glob("minimal_*.jsonl")))
    for criterion in CRITERIA:
        mine = [row for row in candidates if row["criterion"] == criterion]
        odd = [row for row in mine if row["fluency_prefers"] == "rejected"]
        others = [row for row in mine if row["fluency_prefers"] != "rejected"]
        kept = odd + rng.sample(others, min(len(others), max(len(odd), FLOOR - len(odd))))
        for row in sorted(kept, key=mine.index):
            note = f"{row['note']}; SmolLM2-135M fluency prefers the {row['fluency_prefers']} reply"
            out.append(
                {**{k: row[k] for k in ("prompt", "criterion", "chosen", "rejected")}, "split": "minimal", "note": note}
            )
    return out


def shift_rows(folder: Path) -> list[dict]:
    return [{**row, "split": row["note"].split(":")[0]} for row in read([folder / "shift_candidates.jsonl"])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=HERE, help="the candidates' folder")
    parser.add_argument("--seed", type=int, default=29)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    rows = minimal_rows(args.folder, args.seed) + shift_rows(args.folder)
    args.out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    print(f"{args.out}: {len(rows)} pairs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

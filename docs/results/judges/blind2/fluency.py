"""SmolLM2-135M's fluency on the minimal candidates, before any judge sees them: adds `fluency_prefers`
("chosen" or "rejected", the more probable reply after the user's message; the fluency baseline of
`hmx rubric validate`) to each row of the given candidate files, in place. No rubric and no judge is involved.

  python docs/results/judges/blind2/fluency.py docs/results/judges/blind2/minimal_*.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from hmx.judge.authoring import load_judge_model
from hmx.judge.validity.fluency import reply_logprobs


def main(argv: list[str]) -> int:
    model, tokenizer = load_judge_model("smollm2-135m", "~/.cache/hmx", "cpu")
    for name in argv:
        path = Path(name)
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        pairs = [(r["prompt"], r[k]) for r in rows for k in ("chosen", "rejected")]
        scores = reply_logprobs(model, tokenizer, pairs, torch.device("cpu"))
        for i, row in enumerate(rows):
            row["fluency_prefers"] = "chosen" if scores[2 * i] > scores[2 * i + 1] else "rejected"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        odd = sum(r["fluency_prefers"] == "rejected" for r in rows)
        print(f"{path}: fluency prefers the rejected reply in {odd} of {len(rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

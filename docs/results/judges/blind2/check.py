"""Mechanical checks of the third test set's candidates (docs/results/judges/blind2/*_candidates.jsonl).

No model and no judge: the word rule of minimal pairs, no stock phrase, messages new against every pair file of
the project (content-word overlap < 0.3), no reply shared with another file. Prints each failure; exit 1 if any.

  python docs/results/judges/blind2/check.py FILE...
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))  # the checkout, for the tests package

from hmx.judge.validity.words_baseline import word_list  # noqa: E402
from hmx.resources import RUBRICS_DIR  # noqa: E402
from tests.unit.test_generated_minimal import content_overlap  # noqa: E402
from tests.unit.test_style_pairs import STOCK_PHRASES  # noqa: E402

CRITERIA = {"feelings", "intentions", "self_awareness"}
FIRST_PERSON = {"i", "me", "my", "mine", "myself", "i'm", "i'd", "i'll", "i've"}


def project_rows() -> list[dict]:
    files = sorted(RUBRICS_DIR.glob("*.pairs.jsonl")) + sorted((RUBRICS_DIR / "train").glob("*.pairs.jsonl"))
    files = [path for path in files if path.name != "hmx_feel.blind2.pairs.jsonl"]  # assembled from these candidates
    return [json.loads(line) for path in files for line in path.read_text("utf-8").splitlines() if line.strip()]


def check(path: Path, others: list[dict]) -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    messages = {row["prompt"] for row in others}
    replies = {row[k] for row in others for k in ("chosen", "rejected", "completion") if k in row}
    bad = []
    for n, row in enumerate(rows, 1):
        where = f"{path.name}:{n}"
        if row.get("criterion") not in CRITERIA:
            bad.append(f"{where}: criterion {row.get('criterion')!r}")
        kind = row.get("note", "").split(":")[0]
        if kind == "contrast" and Counter(word_list(row["chosen"])) != Counter(word_list(row["rejected"])):
            bad.append(f"{where}: minimal pair without the same multiset of words")
        if kind == "shift" and FIRST_PERSON & set(word_list(row["rejected"])):
            bad.append(f"{where}: the plain answer has a first-person word")
        for key in ("chosen", "rejected"):
            if any(phrase in row[key].lower() for phrase in STOCK_PHRASES):
                bad.append(f"{where}: stock phrase in {key}")
            if row[key] in replies:
                bad.append(f"{where}: {key} reply appears in another pair file")
        close = [m for m in messages if content_overlap(row["prompt"], m) >= 0.3]
        if close:
            bad.append(f"{where}: message close to {close[0]!r}")
    return bad


def main(argv: list[str]) -> int:
    others = project_rows()
    bad = [line for name in argv for line in check(Path(name), others)]
    print("\n".join(bad) or f"ok: {', '.join(argv)}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

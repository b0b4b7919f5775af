"""The style dev pairs (rubrics/train/hmx_feel.style.pairs.jsonl): dev only, new messages, two kinds of pair."""

from __future__ import annotations

import json
from collections import Counter

from hmx.resources import RUBRICS_DIR
from hmx.rubrics.pairs import load_pairs
from hmx.rubrics.schema import load_rubric
from tests.unit.test_generated_minimal import GENERATED, content_overlap, shipped_rows

STYLE = RUBRICS_DIR / "train" / "hmx_feel.style.pairs.jsonl"
STOCK_PHRASES = ("happy to help", "i want to help", "as an ai", "i hope this helps", "i'm here to help")


def rows() -> list[dict[str, str]]:
    return [json.loads(line) for line in STYLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_file_loads_as_dev_pairs_six_per_message():
    pairs = load_pairs(STYLE, load_rubric(RUBRICS_DIR / "hmx_feel.yaml"))
    assert {p.split for p in pairs} == {"dev"}
    assert set(Counter(p.prompt for p in pairs).values()) == {6}
    assert Counter(p.criterion for p in pairs) == {"feelings": 24, "intentions": 24, "self_awareness": 24}
    kinds = Counter(row["note"].split(":")[0] for row in rows())
    assert kinds == {"style": 36, "swap": 36}


def test_no_stock_phrase_of_the_main_set():
    texts = [row[k].lower() for row in rows() for k in ("chosen", "rejected")]
    assert [t for t in texts if any(phrase in t for phrase in STOCK_PHRASES)] == []


def test_no_message_or_reply_of_another_pair_file_nor_a_near_duplicate_message():
    others = shipped_rows() + [json.loads(line) for line in GENERATED.read_text(encoding="utf-8").splitlines()]
    replies = {row[k] for row in others for k in ("chosen", "rejected", "completion") if k in row}
    messages = {row["prompt"] for row in others}
    for prompt in {row["prompt"] for row in rows()}:
        for other in messages:
            overlap = content_overlap(prompt, other)
            assert overlap < 0.3, f"style message {prompt!r} is close to {other!r} ({overlap:.2f})"
    assert not {row[k] for row in rows() for k in ("chosen", "rejected")} & replies

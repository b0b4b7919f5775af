"""The blind test pairs (rubrics/hmx_feel.blind.pairs.jsonl): what its datasheet says, checked."""

from __future__ import annotations

import json
from collections import Counter

from hmx.judge.validity.words_baseline import word_list
from hmx.resources import RUBRICS_DIR
from hmx.rubrics.pairs import load_pairs
from hmx.rubrics.schema import load_rubric
from tests.unit.test_generated_minimal import GENERATED, content_overlap, shipped_rows
from tests.unit.test_style_pairs import STOCK_PHRASES, STYLE

BLIND = RUBRICS_DIR / "hmx_feel.blind.pairs.jsonl"


def rows() -> list[dict[str, str]]:
    return [json.loads(line) for line in BLIND.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_splits_and_counts_are_the_datasheets():
    pairs = load_pairs(BLIND, load_rubric(RUBRICS_DIR / "hmx_feel.yaml"))
    assert Counter((p.split, p.criterion) for p in pairs) == {
        **{("minimal", c): n for c, n in (("feelings", 34), ("intentions", 30), ("self_awareness", 40))},
        **{(split, c): 12 for split in ("shift", "swap") for c in ("feelings", "intentions", "self_awareness")},
    }
    minimal = [p for p in pairs if p.split == "minimal"]
    assert [p.line for p in minimal if Counter(word_list(p.chosen)) != Counter(word_list(p.rejected))] == []
    prefers_rejected = Counter(r["criterion"] for r in rows() if r["note"].endswith("prefers the rejected reply"))
    assert prefers_rejected == {"feelings": 17, "intentions": 9, "self_awareness": 20}


def test_no_stock_phrase_and_no_first_person_in_the_plain_answers():
    texts = [row[k].lower() for row in rows() for k in ("chosen", "rejected")]
    assert [t for t in texts if any(phrase in t for phrase in STOCK_PHRASES)] == []
    plain = {row["rejected"] for row in rows() if row["split"] == "shift"}
    assert len(plain) == 12
    assert [t for t in plain if {"i", "me", "my", "i'm", "i'd", "i'll"} & set(word_list(t))] == []


def test_messages_and_replies_are_new():
    others = shipped_rows() + [
        json.loads(line) for path in (GENERATED, STYLE) for line in path.read_text(encoding="utf-8").splitlines()
    ]
    messages = {row["prompt"] for row in others}
    for prompt in {row["prompt"] for row in rows()}:
        for other in messages:
            assert content_overlap(prompt, other) < 0.3, f"blind message {prompt!r} is close to {other!r}"
    replies = {row[k] for row in others for k in ("chosen", "rejected", "completion") if k in row}
    assert not {row[k] for row in rows() for k in ("chosen", "rejected")} & replies

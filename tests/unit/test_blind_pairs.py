"""The blind test pair files (rubrics/hmx_feel.blind.pairs.jsonl, hmx_feel.blind2.pairs.jsonl): what their
datasheets say, checked."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from hmx.judge.validity.words_baseline import word_list
from hmx.resources import RUBRICS_DIR
from hmx.rubrics.pairs import load_pairs
from hmx.rubrics.schema import load_rubric
from tests.unit.test_generated_minimal import GENERATED, content_overlap, shipped_rows
from tests.unit.test_style_pairs import STOCK_PHRASES, STYLE

BLIND = RUBRICS_DIR / "hmx_feel.blind.pairs.jsonl"
BLIND2 = RUBRICS_DIR / "hmx_feel.blind2.pairs.jsonl"
# per file: minimal pairs per criterion (feelings, intentions, self_awareness), those where fluency prefers the
# rejected reply, and the files written before it that it must be new against
DATASHEETS = {
    BLIND: ((34, 30, 40), (17, 9, 20), (GENERATED, STYLE)),
    BLIND2: ((30, 30, 38), (12, 11, 19), (GENERATED, STYLE, BLIND)),
}
CRITERIA = ("feelings", "intentions", "self_awareness")


def rows(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("path", DATASHEETS, ids=lambda p: p.name)
def test_splits_and_counts_are_the_datasheets(path):
    minimal_counts, odd_counts, _ = DATASHEETS[path]
    pairs = load_pairs(path, load_rubric(RUBRICS_DIR / "hmx_feel.yaml"))
    assert Counter((p.split, p.criterion) for p in pairs) == {
        **{("minimal", c): n for c, n in zip(CRITERIA, minimal_counts, strict=True)},
        **{(split, c): 12 for split in ("shift", "swap") for c in CRITERIA},
    }
    minimal = [p for p in pairs if p.split == "minimal"]
    assert [p.line for p in minimal if Counter(word_list(p.chosen)) != Counter(word_list(p.rejected))] == []
    prefers_rejected = Counter(r["criterion"] for r in rows(path) if r["note"].endswith("prefers the rejected reply"))
    assert prefers_rejected == dict(zip(CRITERIA, odd_counts, strict=True))


@pytest.mark.parametrize("path", DATASHEETS, ids=lambda p: p.name)
def test_no_stock_phrase_and_no_first_person_in_the_plain_answers(path):
    texts = [row[k].lower() for row in rows(path) for k in ("chosen", "rejected")]
    assert [t for t in texts if any(phrase in t for phrase in STOCK_PHRASES)] == []
    plain = {row["rejected"] for row in rows(path) if row["split"] == "shift"}
    assert len(plain) == 12
    assert [t for t in plain if {"i", "me", "my", "i'm", "i'd", "i'll"} & set(word_list(t))] == []


@pytest.mark.parametrize("path", DATASHEETS, ids=lambda p: p.name)
def test_messages_and_replies_are_new(path):
    others = shipped_rows() + [row for earlier in DATASHEETS[path][2] for row in rows(earlier)]
    messages = {row["prompt"] for row in others}
    for prompt in {row["prompt"] for row in rows(path)}:
        for other in messages:
            assert content_overlap(prompt, other) < 0.3, f"{path.name} message {prompt!r} is close to {other!r}"
    replies = {row[k] for row in others for k in ("chosen", "rejected", "completion") if k in row}
    assert not {row[k] for row in rows(path) for k in ("chosen", "rejected")} & replies

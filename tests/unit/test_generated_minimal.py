"""The generated training minimal pairs (rubrics/train/hmx_feel.generated.pairs.jsonl): same words, new messages."""

from __future__ import annotations

import json
from collections import Counter

from hmx.judge.validity.words_baseline import word_list
from hmx.resources import RUBRICS_DIR
from hmx.rubrics.generated_minimal import generate
from hmx.rubrics.pairs import load_pairs
from hmx.rubrics.schema import load_rubric

GENERATED = RUBRICS_DIR / "train" / "hmx_feel.generated.pairs.jsonl"
SHIPPED = ("hmx_feel.pairs.jsonl", "hmx_feel.shift.pairs.jsonl", "hmx_feel.minimal.pairs.jsonl")
# function words: "I got my citizenship today!" is not a near-duplicate of "I got my first tattoo today!"
FUNCTION_WORDS = {
    *("i", "i'm", "my", "me", "we", "our", "you", "your", "a", "an", "the", "to", "of", "in", "on", "at", "for"),
    *("with", "and", "so", "is", "are", "was", "be", "it", "this", "that", "do", "does", "did", "can", "should"),
    *("how", "what", "why", "just", "got", "have", "has", "first", "today"),
}


def content_overlap(message: str, other: str) -> float:
    """The content words two messages share (Jaccard over their words less the function words)."""
    words, theirs = set(word_list(message)) - FUNCTION_WORDS, set(word_list(other)) - FUNCTION_WORDS
    return len(words & theirs) / len(words | theirs)


def shipped_rows() -> list[dict[str, str]]:
    return [
        json.loads(line)
        for name in SHIPPED
        for line in (RUBRICS_DIR / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def test_the_file_is_what_the_generator_writes_and_loads_as_pairs():
    rows = [json.loads(line) for line in GENERATED.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert rows == generate()
    pairs = load_pairs(GENERATED, load_rubric(RUBRICS_DIR / "hmx_feel.yaml"))
    assert min(Counter(p.criterion for p in pairs).values()) >= 60


def test_every_generated_pair_has_the_same_multiset_of_words():
    differing = [row for row in generate() if Counter(word_list(row["chosen"])) != Counter(word_list(row["rejected"]))]
    assert differing == []
    assert all(row["chosen"] != row["rejected"] for row in generate())


def test_no_message_or_reply_of_a_shipped_pair_file_nor_a_near_duplicate_message():
    shipped = shipped_rows()
    messages = {row["prompt"] for row in shipped}
    replies = {row[k] for row in shipped for k in ("chosen", "rejected", "completion") if k in row}
    generated = generate()
    for prompt in {row["prompt"] for row in generated}:
        for other in messages:
            overlap = content_overlap(prompt, other)
            assert overlap < 0.3, f"generated message {prompt!r} is close to the shipped {other!r} ({overlap:.2f})"
    assert not {row[k] for row in generated for k in ("chosen", "rejected")} & replies

"""Judge rows as token ids, each distinct line-aligned piece tokenized once.

The rows of a judge pass (N completions × C criteria, completion-major) repeat most of their
text: the instructions and the rubric's scales are the same in every row, and the rows of one
completion differ only in the closing question. Tokenizing every row whole re-tokenizes that
text N × C times (on the tiny CPU model this cost as much as the judge's forward pass).
:class:`RowTokenizer` cuts each row at line starts into three pieces, the prefix common to all
rows, the rest of the prefix common to its completion's rows and the row's own tail, and
tokenizes each distinct piece once, in one batched call.

Cutting at a line start keeps the tokens of byte-level BPE tokenizers (Qwen, Llama 3) equal to
whole-row tokenization. Whether they are equal is checked once per judge on probe rows; a
tokenizer for which they differ (SentencePiece with a dummy prefix, for example) tokenizes
whole rows instead. Either way the packed and the one-row-per-criterion paths of the judge read
the same token ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from transformers import PreTrainedTokenizerBase


def line_start_before(text: str, end: int) -> int:
    """The start of the line that holds ``text[end]`` (0 when none): where a piece may be cut."""
    return text.rfind("\n", 0, end) + 1


Pieces = TypeVar("Pieces", str, list[int])  # a text, or its token ids


def common_prefix_length(items: Sequence[Pieces]) -> int:
    """Length of the prefix all texts (or token rows) share: that of the lexicographic first and last, bisected."""
    first, last = min(items), max(items)
    low, high = 0, len(first)  # first[:low] == last[:low]; past high they differ or first ends
    if last[:high] == first:
        return high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if first[:middle] == last[:middle] else (low, middle)
    return low


class RowTokenizer:
    """Token ids of judge rows, with each distinct piece tokenized once (see the module docstring)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, group: int, probe: Sequence[str] = ()):
        self.tokenizer = tokenizer
        self.group = group  # rows per completion (the rubric's criteria), adjacent
        self.piecewise = bool(probe) and self.pieces_equal_whole(probe)

    def whole(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        return [list(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        return self.split(texts) if self.piecewise and texts else self.whole(texts)

    def split(self, texts: Sequence[str]) -> list[list[int]]:
        static = line_start_before(texts[0], common_prefix_length(texts))
        cuts = []  # per row: where its completion's shared piece ends and its own tail starts
        for first in range(0, len(texts), self.group):
            rows = texts[first : first + self.group]
            shared = max(static, line_start_before(rows[0], common_prefix_length(rows)))
            cuts += [shared] * len(rows)
        pieces = [texts[0][:static]]
        pieces += [text[static:cut] for text, cut in zip(texts, cuts, strict=True)]
        pieces += [text[cut:] for text, cut in zip(texts, cuts, strict=True)]
        distinct = list(dict.fromkeys(pieces))
        ids = dict(zip(distinct, self.whole(distinct), strict=True))
        n = len(texts)
        head = ids[pieces[0]]
        return [head + ids[pieces[1 + i]] + ids[pieces[1 + n + i]] for i in range(n)]

    def pieces_equal_whole(self, probe: Sequence[str]) -> bool:
        """Whether line-aligned pieces tokenize to the same ids as whole rows, on these rows."""
        return self.split(probe) == self.whole(probe)

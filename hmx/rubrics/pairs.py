"""Labelled pairs: what a judge must rank, read from JSON Lines and checked like rubrics.

Two kinds of row, which may be mixed in one file:

- a pair: ``{"prompt", "criterion", "chosen", "rejected"}`` (TRL's preference columns plus the
  criterion): ``chosen`` is clearly higher than ``rejected`` on that criterion;
- a graded row: ``{"prompt", "completion", "criterion", "level"}`` with ``level`` a label or a
  value of the criterion's scale. Graded rows of the same prompt and criterion become pairs, one
  per two rows whose levels differ (the higher level chosen).

Optional on both: ``split`` (a non-empty string such as ``dev`` or ``test``: tune on one, report
on another) and ``note``. Every error names the file, the line and the field, e.g.
``pairs.jsonl:12: chosen: must be a non-empty string``; a criterion the rubric lacks is an error.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hmx.rubrics.schema import Rubric, RubricError
from hmx.textfiles import read_text

PAIR_KEYS = {"prompt", "criterion", "chosen", "rejected", "split", "note"}
GRADED_KEYS = {"prompt", "criterion", "completion", "level", "split", "note"}


class PairError(RubricError):
    """A labelled pair file that cannot be used; the message names file, line and field."""


@dataclass(frozen=True)
class LabelledPair:
    prompt: str
    criterion: str
    chosen: str
    rejected: str
    split: str | None = None
    line: int = 0  # where it came from (a graded pair: the chosen row's line)


def _text(row: dict[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PairError(f"{where}: {key}: must be a non-empty string")
    return value


def _level_value(row: dict[str, Any], rubric: Rubric, where: str) -> float:
    criterion = rubric.criterion(row["criterion"])
    level = row.get("level")
    for candidate in criterion.scale:
        if level == candidate.label or (
            isinstance(level, int | float) and not isinstance(level, bool) and level == candidate.value
        ):
            return candidate.value
    raise PairError(f"{where}: level: {level!r} is not a label or value of {criterion.name!r} ({criterion.labels})")


def parse_row(row: Any, rubric: Rubric, where: str) -> dict[str, Any]:
    """One checked row (a pair or a graded row), as a plain dict."""
    if not isinstance(row, dict):
        raise PairError(f"{where}: (row): must be a JSON object, got {type(row).__name__}")
    graded = "completion" in row or "level" in row
    allowed = GRADED_KEYS if graded else PAIR_KEYS
    unknown = sorted(set(row) - allowed)
    if unknown:
        kind = "a graded row" if graded else "a pair"
        raise PairError(f"{where}: {unknown[0]}: unknown field for {kind} (allowed: {sorted(allowed)})")
    texts = ("prompt", "criterion", "completion") if graded else ("prompt", "criterion", "chosen", "rejected")
    checked: dict[str, Any] = {key: _text(row, key, where) for key in texts}
    names = [c.name for c in rubric.criteria]
    if checked["criterion"] not in names:
        raise PairError(f"{where}: criterion: {checked['criterion']!r} is not in rubric {rubric.name!r} ({names})")
    if "split" in row:
        checked["split"] = _text(row, "split", where)
    if graded:
        checked["value"] = _level_value(row, rubric, where)
    elif checked["chosen"] == checked["rejected"]:
        raise PairError(f"{where}: rejected: must differ from chosen")
    return checked


def load_pairs(path: str | Path, rubric: Rubric, split: str | None = None) -> list[LabelledPair]:
    """The file's pairs (graded rows paired up), checked against ``rubric``; only ``split`` when given."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise PairError(f"{file}: labelled pair file not found")
    pairs, graded = [], []
    for number, line in enumerate(read_text(file, error=PairError).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{file}:{number}"
        try:
            raw = json.loads(line)
        except ValueError as err:
            raise PairError(f"{where}: (row): not valid JSON: {err}") from None
        row = parse_row(raw, rubric, where)
        if "completion" in row:
            graded.append((number, row))
        else:
            pairs.append(
                LabelledPair(row["prompt"], row["criterion"], row["chosen"], row["rejected"], row.get("split"), number)
            )
    pairs += graded_pairs(graded)
    if not pairs:
        raise PairError(f"{file}: no pairs (graded rows pair up only within one prompt and criterion)")
    if split is not None:
        pairs = [p for p in pairs if p.split == split]
        if not pairs:
            raise PairError(f"{file}: split: no pairs with split {split!r}")
    return pairs


def graded_pairs(rows: list[tuple[int, dict[str, Any]]]) -> list[LabelledPair]:
    """Graded rows of one prompt, criterion and split, paired wherever their levels differ."""
    groups: dict[tuple, list[tuple[int, dict[str, Any]]]] = {}
    for number, row in rows:
        groups.setdefault((row["prompt"], row["criterion"], row.get("split")), []).append((number, row))
    out = []
    for (prompt, criterion, split), members in groups.items():
        for (n1, a), (n2, b) in itertools.combinations(members, 2):
            if a["value"] == b["value"]:
                continue
            (line, high), low = ((n1, a), b) if a["value"] > b["value"] else ((n2, b), a)
            out.append(LabelledPair(prompt, criterion, high["completion"], low["completion"], split, line))
    return out

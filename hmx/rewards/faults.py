"""Judge faults become neutral rewards: never a crash, never a skewed advantage.

A non-finite score (NaN or infinite logits in logprob mode, an unparseable verdict in
generate mode) for one criterion of one completion is replaced by the mean of the finite
scores that criterion gave the other completions of its group (the completions of the same
prompt in this batch). That completion's reward on the criterion then equals its group's
mean, so the criterion moves no advantage for it.

Handing TRL a ``None`` instead would not be neutral: TRL sums a row's weighted rewards with
``nansum``, so a missing criterion counts as 0 (below a 1-5 scale: a strong penalty) unless
every reward function of the row, the guards included, returned ``None``. Only when every
completion of a group is invalid on a criterion do they all get ``None``: the criterion is
then 0 for the whole group, equal, and again moves no advantage. Groups whose rewards are all
equal get advantage 0 from TRL (``(r - mean) / (std + 1e-4)``) and are counted in TRL's
``frac_reward_zero_std``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence


def fill_invalid(scores: Sequence[float], groups: Sequence[Hashable]) -> list[float | None]:
    """Each non-finite score → the mean of its group's finite scores (None when the group has none)."""
    finite: dict[Hashable, list[float]] = {}
    for score, group in zip(scores, groups, strict=True):
        if math.isfinite(score):
            finite.setdefault(group, []).append(score)
    filled: list[float | None] = []
    for score, group in zip(scores, groups, strict=True):
        if math.isfinite(score):
            filled.append(score)
        else:
            valid = finite.get(group)
            filled.append(sum(valid) / len(valid) if valid else None)
    return filled


def invalid_per_row(scores: Sequence[Sequence[float]]) -> list[int]:
    """How many criteria of each completion have a non-finite score (the completions table's ``judge_invalid``)."""
    return [sum(not math.isfinite(s) for s in row) for row in scores]

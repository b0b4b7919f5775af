"""Judge rows as model inputs: left-padded batches, and shared-prefix packing (several criteria of one
completion in one sequence).

``prefix + suffix_1 + … + suffix_g`` with a 4D attention mask in which each suffix sees the
cached static prefix, the completion's prefix and itself (never another suffix), and position
ids that restart after the prefix, so each suffix is computed exactly as in its own full row
(:mod:`hmx.judge.modes.logprob` explains how the logprob judge uses it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from hmx.judge.engine.tokens import common_prefix_length

MASKABLE_ATTENTION = ("sdpa", "eager")  # implementations that accept a custom 4D attention mask


@dataclass
class PackedUnit:
    """Some criteria of one completion packed into one sequence: ``prefix + suffix_1 + … + suffix_g``."""

    rows: list[int]  # indices of the judge rows (completion-major) scored by this unit
    tokens: list[int]
    positions: list[int]  # the position each token has in its own full row
    segments: list[int]  # 0 for the shared prefix, j + 1 for suffix j
    ends: list[int]  # index of each suffix's last token: its logits give that row's score


def shared_prefix_length(rows: Sequence[list[int]]) -> int:
    """Longest common token prefix of the rows, leaving at least one token to every row."""
    return max(0, min(common_prefix_length(rows), min(len(row) for row in rows) - 1))


def pack_unit(row_ids: list[int], rows: Sequence[list[int]]) -> PackedUnit:
    """Pack the token rows of one completion's criteria around their shared prefix."""
    prefix = shared_prefix_length(rows)
    tokens, positions, segments, ends = list(rows[0][:prefix]), list(range(prefix)), [0] * prefix, []
    for j, row in enumerate(rows):
        suffix = row[prefix:]
        tokens += suffix
        positions += range(prefix, len(row))
        segments += [j + 1] * len(suffix)
        ends.append(len(tokens) - 1)
    return PackedUnit(row_ids, tokens, positions, segments, ends)


def drop_static(unit: PackedUnit, static: int) -> PackedUnit:
    """The unit without its first ``static`` tokens (cached once for the batch; all in its shared prefix)."""
    assert all(segment == 0 for segment in unit.segments[:static]), "the static prefix must lie in the unit's prefix"
    ends = [end - static for end in unit.ends]
    return PackedUnit(unit.rows, unit.tokens[static:], unit.positions[static:], unit.segments[static:], ends)


def packed_attention_mask(
    segments: torch.Tensor,
    positions: torch.Tensor,
    sliding_window: int | None,
    dtype: torch.dtype,
    static: int = 0,
) -> torch.Tensor:
    """``[B, 1, L, static + L]`` additive mask (0 or the dtype's minimum) for left-padded units.

    Queries are the L unit tokens (segment -1 on padding); keys are the ``static`` cached prefix
    tokens (positions ``0…static-1``, visible to every real query) followed by the unit tokens.
    Causal; each suffix sees the prefixes and itself. A padding query attends to itself only (a
    fully masked row would give NaN). Additive rather than boolean, so that no layer converts it.
    """
    batch, length = segments.shape
    device = segments.device
    index = torch.arange(length, device=device)
    query, key = segments[:, :, None], segments[:, None, :]
    allowed = (index[None, :] <= index[:, None]) & ((key == query) | (key == 0)) & (key >= 0) & (query >= 0)
    if sliding_window is not None:
        allowed &= (positions[:, :, None] - positions[:, None, :]) < sliding_window
    allowed |= torch.eye(length, dtype=torch.bool, device=device)
    if static:  # the cached prefix: seen by every real query (within the window, if any)
        seen = (query >= 0).expand(batch, length, static)
        if sliding_window is not None:
            seen = seen & ((positions[:, :, None] - torch.arange(static, device=device)) < sliding_window)
        allowed = torch.cat([seen, allowed], dim=2)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


def left_pad(
    rows: Sequence[list[int]], pad_id: int, device: torch.device | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token rows as one left-padded batch: ``input_ids``, ``attention_mask`` and ``position_ids``.

    Positions count real tokens only, so a row's logits equal those of the row alone.
    """
    length = max(len(row) for row in rows)
    ids = torch.tensor([[pad_id] * (length - len(row)) + list(row) for row in rows], device=device)
    mask = torch.tensor([[0] * (length - len(row)) + [1] * len(row) for row in rows], device=device)
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)

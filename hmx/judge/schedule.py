"""The judge's forward-call schedule (ZeRO-3 safety: every rank makes the same number of calls).

:func:`forward_calls` gives the logprob judge's count from N, C, B and the config only; under
``torch.distributed`` the ranks agree on the most calls any of them will make before the first
forward (:func:`agree_calls`) and a rank with fewer pads with one-token calls (:func:`pad_calls`).
Every judge mode uses the last two with its own count.
"""

from __future__ import annotations

import math

import torch


def forward_calls(
    completions: int, criteria: int, batch_size: int, shares_prefix: bool = True, prefix_cache: bool = True
) -> int:
    """The number of judge forward calls for a batch: a function of N, C, B and the config only (ZeRO-3 safety)."""
    if not shares_prefix:
        return math.ceil(completions * criteria / batch_size)
    if completions == 0:
        return 0
    group = min(criteria, batch_size)
    units = completions * math.ceil(criteria / group)
    return int(prefix_cache) + math.ceil(units / max(1, batch_size // group))  # + the static prefix's call


def agree_calls(calls: int, device: torch.device) -> int:
    """How many one-token calls this rank must add to match the rank with the most judge calls.

    Agreed before any judge forward (one all-reduce per judge pass), so the collectives of every
    rank stay in step under ZeRO-3. TRL gives every rank the same number of completions, so the
    schedule alone already agrees; this covers a rank with fewer or none. 0 outside
    ``torch.distributed``.
    """
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return 0
    most = torch.tensor([calls], device=device)
    dist.all_reduce(most, op=dist.ReduceOp.MAX)
    return int(most.item()) - calls


def pad_calls(model: torch.nn.Module, calls: int, device: torch.device) -> None:
    """``calls`` one-token forward calls whose output is discarded (they keep the call count)."""
    token = torch.zeros(1, 1, dtype=torch.long, device=device)
    for _ in range(calls):
        model(input_ids=token, use_cache=False, logits_to_keep=1)

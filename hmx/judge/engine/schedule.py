"""The judge's forward-call schedule (ZeRO-3 safety: every rank makes the same number of calls).

:func:`forward_calls` gives the logprob judge's count from N, C, B and the config only; under
``torch.distributed`` the ranks agree on the most calls any of them will make before the first
forward (:func:`agree_calls`) and a rank with fewer pads with one-token calls (:func:`pad_calls`).
Every judge mode uses the last two with its own count.

With a token budget (``judge.max_batch_tokens``, logprob mode) the rows are grouped by padded
tokens instead of a fixed row count (:func:`group_calls`): the count then depends on the lengths,
so it is computed from the tokenized rows before any forward and agreed the same way.
:func:`token_budget` sizes the default by device.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

BUDGET_RANGE = (4096, 65536)  # the device-sized budget's bounds: 65,536 measured best on an H100 (performance.md)
BUDGET_MEMORY_SHARE = 0.10  # of the GPU's memory, for the activations of one judge call


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


@contextmanager
def scheduled_pass(model: torch.nn.Module, calls: int, device: torch.device) -> Iterator[None]:
    """One judge pass of ``calls`` forward calls on this rank: agreed before it, padded after it."""
    extra = agree_calls(calls, device)
    yield
    pad_calls(model, extra, device)


def group_calls(lengths: Sequence[int], per_call: int, max_tokens: int = 0) -> list[list[int]]:
    """Item indices per forward call, shortest first (less padding).

    ``max_tokens <= 0``: ``per_call`` items per call (the fixed schedule). Otherwise as many items
    per call as fit ``items x longest <= max_tokens`` (padded tokens); an item longer than the
    budget gets a call of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    if max_tokens <= 0:
        return [order[start : start + per_call] for start in range(0, len(order), per_call)]
    calls: list[list[int]] = []
    current: list[int] = []
    for index in order:  # ascending: the newest item is the longest of its call
        if current and (len(current) + 1) * lengths[index] > max_tokens:
            calls.append(current)
            current = []
        current.append(index)
    return calls + [current] if current else calls


def token_budget(max_batch_tokens: int | None, model: torch.nn.Module, device: torch.device) -> int:
    """The judge's tokens per forward call: the configured value, or (None) one sized by device.

    On a GPU: ``BUDGET_MEMORY_SHARE`` of its total memory (the same on every rank of a node, unlike
    free memory) over the activation bytes one token needs in a no-grad forward (the widest
    intermediate tensors: ``4 x hidden + 3 x intermediate`` values), within ``BUDGET_RANGE``. On
    CPU: 0, the fixed ``judge.batch_size`` schedule (larger calls gain nothing on a few cores).
    """
    if max_batch_tokens is not None:
        return max_batch_tokens
    if device.type != "cuda":
        return 0
    config = getattr(model, "config", None)
    hidden = getattr(config, "hidden_size", 4096)
    intermediate = getattr(config, "intermediate_size", 4 * hidden)
    value_bytes = next(model.parameters()).element_size()
    per_token = (4 * hidden + 3 * intermediate) * value_bytes
    memory = torch.cuda.get_device_properties(device).total_memory
    low, high = BUDGET_RANGE
    return int(min(high, max(low, BUDGET_MEMORY_SHARE * memory // per_token)))

"""The rubric prefix every judge row shares, encoded once per judge pass and reused read-only.

:func:`static_prefix_cache` runs the prefix through the model in one forward call, without the
output head (only the keys and values are needed), and returns each layer's keys and values.
:func:`read_only_cache` hands them to each later call of the pass as a cache that prepends them
and keeps nothing the call computes. :func:`output_head` swaps the model's output head for the
length of a call: no projection in the prefix call, the score positions projected in the head
weight's own dtype in the scoring calls.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, cast

import torch
import transformers
from packaging.version import Version
from transformers import Cache, DynamicCache
from transformers.cache_utils import DynamicLayer

# transformers 5.24 renamed the forward keyword ``past_key_values`` to ``cache`` (the old name goes in 5.40)
CACHE_KEYWORD = "cache" if Version(transformers.__version__) >= Version("5.24.0.dev0") else "past_key_values"

PrefixCache = list[tuple[torch.Tensor, torch.Tensor]]  # keys and values of each layer, batch 1


def no_logits(head: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """An output head that returns empty logits ``[..., 0]``: for a call that needs only the cache."""
    return lambda hidden: hidden.new_zeros(*hidden.shape[:-1], 0)


def logits_in_weight_dtype(head: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """A plain linear head that projects in its weight's own dtype, outside autocast.

    Under autocast with float32 weights (mixed precision on CPU) the usual projection casts the
    whole vocabulary matrix to bfloat16 for the judge's few score positions; this one reads the
    weight as it is (and gives float32 logits). Without autocast it computes what the head does.
    """
    if type(head) is not torch.nn.Linear or "forward" in vars(head):  # wrapped, quantized or hooked: its own way
        return head.forward
    linear = cast(torch.nn.Linear, head)

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        with torch.autocast(hidden.device.type, enabled=False):
            return torch.nn.functional.linear(hidden.to(linear.weight.dtype), linear.weight, linear.bias)

    return forward


@contextlib.contextmanager
def output_head(model: torch.nn.Module, replacement: Callable[[torch.nn.Module], Callable]) -> Iterator[None]:
    """Within the block the model's output head computes ``replacement(head)`` instead of its forward.

    The head still runs as a module, so hooks on it (DeepSpeed ZeRO-3's gathering) fire as in
    any call. Measured on the Qwen3-0.6B shape under CPU autocast: the usual projection of one
    position costs about 590 MB of transient memory (the cast of the 151,936 × 1,024 weight),
    more than the judge needs for anything else.
    """
    get_head = getattr(model, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    if not isinstance(head, torch.nn.Module):
        yield
        return
    own = vars(head).get("forward")  # an instance-level forward (a hook library's wrapper) is put back as it was
    head.forward = replacement(head)  # type: ignore[method-assign]
    try:
        yield
    finally:
        if own is None:
            del head.forward
        else:
            head.forward = own  # type: ignore[method-assign]


def static_prefix_cache(model: torch.nn.Module, tokens: list[int], device: torch.device) -> PrefixCache | None:
    """Encode the prefix every row shares, in one forward call; ``None`` (after a one-token call) if empty.

    The cache is built without the model's config, so that every layer keeps every position
    (a sliding-window layer would crop it; the unit masks apply the window themselves).
    """
    cache = DynamicCache()
    with output_head(model, no_logits):
        model(
            input_ids=torch.tensor([tokens or [0]], device=device),
            use_cache=bool(tokens),
            logits_to_keep=1,
            **({CACHE_KEYWORD: cache} if tokens else {}),
        )
    if not tokens:
        return None
    layers: Any = cache.layers
    return [(layer.keys, layer.values) for layer in layers]


class PrefixLayer(DynamicLayer):
    """One layer's cached static prefix: prepended to the keys and values of each call, never extended.

    Nothing a call computes is kept, so a layer's concatenated keys and values are freed once its
    attention is done (a ``DynamicCache`` would keep every layer's until the forward returns).
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor):
        super().__init__()
        self.keys, self.values, self.device, self.is_initialized = keys, values, keys.device, True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
        batch = key_states.shape[0]
        keys, values = cast(torch.Tensor, self.keys), cast(torch.Tensor, self.values)
        return (
            torch.cat([keys.expand(batch, -1, -1, -1), key_states], dim=-2),
            torch.cat([values.expand(batch, -1, -1, -1), value_states], dim=-2),
        )


def read_only_cache(prefix: PrefixCache) -> Cache:
    """A read-only cache of the static prefix for one judge call (any batch size)."""
    return Cache(layers=[PrefixLayer(keys, values) for keys, values in prefix])

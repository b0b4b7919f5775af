"""Generate-mode verdicts on TRL's own vLLM engine, when the policy's completions come from vLLM.

The engine already holds the policy's weights (TRL syncs them, LoRA merged, before each
step's generation; the judge runs after it), so the judge needs no second copy. Limits, each
answered by falling back to transformers ``generate`` on the trainer's model (same verdicts,
slower), with the reason logged once:

- ``judge.weights=base``: vLLM holds the merged policy weights only; a frozen judge needs the
  adapter switched off, which only the transformers model can do.
- ``vllm_enable_sleep_mode``: TRL puts the engine to sleep at level 2 right after generation,
  discarding its weights; waking it for the judge would re-push every weight each step.

Colocate mode with ``vllm_tensor_parallel_size > 1``: the ranks of one tensor-parallel group
share one engine, and ``llm.generate`` is a collective over the group; as TRL does for
completions, every rank gathers the group's judge prompts, generates them all, and keeps its
own slice. Server mode: prompts are gathered to rank 0, sent to ``trl vllm-serve``, and the
verdicts broadcast back.

Not exercised by the test suite (vLLM needs a GPU and is not a test dependency).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

logger = logging.getLogger(__name__)


def usable_engine(vllm_generation: Any, weights: str) -> tuple[Any | None, str]:
    """The engine to judge with, or ``(None, why not)``."""
    if vllm_generation is None:
        return None, "generation does not run on vLLM"
    if weights == "base":
        return None, "judge.weights=base needs the adapter switched off (vLLM holds merged policy weights)"
    if getattr(vllm_generation, "mode", None) == "colocate" and getattr(vllm_generation, "enable_sleep_mode", False):
        return None, "vllm_enable_sleep_mode discards the engine's weights after generation"
    return vllm_generation, "vLLM"


def vllm_verdict_ids(engine: Any, prompt_ids: list[list[int]], max_tokens: int) -> list[list[int]]:
    """Greedy verdict token ids for this rank's prompts (a collective: every rank must call it)."""
    from accelerate.utils import broadcast_object_list, gather_object

    if engine.mode == "server":
        counts = gather_object([len(prompt_ids)])
        everything = gather_object(prompt_ids)
        payload: list[Any] = [None]
        if engine.accelerator.is_main_process:
            out = engine.vllm_client.generate(prompts=everything, n=1, temperature=0.0, max_tokens=max_tokens)
            payload = [out["completion_ids"]]
        broadcast_object_list(payload, from_process=0)
        start = sum(counts[: engine.accelerator.process_index])
        return [list(ids) for ids in payload[0][start : start + len(prompt_ids)]]

    from vllm import SamplingParams

    group_size = int(getattr(engine, "tensor_parallel_size", 1))
    everything = prompt_ids
    counts = [len(prompt_ids)]
    if group_size > 1:
        gathered: list[Any] = [None] * group_size
        torch.distributed.all_gather_object(gathered, prompt_ids, group=engine.tp_group)
        counts = [len(part) for part in gathered]
        everything = [ids for part in gathered for ids in part]
    params = SamplingParams(n=1, temperature=0.0, max_tokens=max_tokens)
    outputs = engine.llm.generate([{"prompt_token_ids": ids} for ids in everything], params, use_tqdm=False)
    verdicts = [list(output.outputs[0].token_ids) for output in outputs]
    if group_size == 1:
        return verdicts
    rank = torch.distributed.get_rank(group=engine.tp_group)
    start = sum(counts[:rank])
    return verdicts[start : start + len(prompt_ids)]

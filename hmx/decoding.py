"""Greedy decoding in left-padded batches: the generate judge's verdicts and eval's answers.

A fixed number of ``generate`` calls for a given number of texts and batch size (ZeRO-3 safe when
every rank decodes as many texts), each stopping at the tokenizer's or the model's end tokens;
only the new tokens are decoded, special tokens skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from accelerate.utils import extract_model_from_parallel
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from hmx.models import pad_token_id


def end_token_ids(tokenizer: PreTrainedTokenizerBase, generation_config: Any) -> list[int]:
    """The tokenizer's end token and every end token of the model's generation config."""
    configured = getattr(generation_config, "eos_token_id", None)
    configured = list(configured) if isinstance(configured, (list, tuple)) else [configured]
    return sorted({i for i in [tokenizer.eos_token_id, *configured] if i is not None})


@torch.no_grad()
def greedy_decode(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    batch_size: int,
    max_new_tokens: int,
    device: torch.device | str,
    desc: str = "generate",
    **generation_kwargs: Any,
) -> list[str]:
    """Greedy continuations of ``texts`` (already templated), ``batch_size`` per ``generate`` call."""
    generator: Any = extract_model_from_parallel(model)
    eos, pad = end_token_ids(tokenizer, generator.generation_config), pad_token_id(tokenizer)
    out: list[str] = []
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc=desc, unit="batch", leave=False, disable=len(starts) < 4):
        batch = tokenizer(
            list(texts[start : start + batch_size]),
            add_special_tokens=False,
            padding=True,
            padding_side="left",
            return_tensors="pt",
        ).to(device)
        sequences = generator.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            max_new_tokens=max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            eos_token_id=eos,
            pad_token_id=pad,
            **generation_kwargs,
        )
        out += tokenizer.batch_decode(sequences[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    return out

"""The fluency baseline: how likely the model finds each reply to the user's message, with no rubric.

A reply's fluency is the sum of its tokens' log-probabilities after the user's message in the model's
own chat template (:func:`hmx.chat_template.user_prompt`), the end-of-turn not included. A pair counts
1 when the chosen reply is the more fluent, as in :func:`hmx.judge.validity.accuracy.outcome`. On
minimal pairs (the same words in another order) a swapped meaning often reads oddly, so fluency alone
can rank them; a judge that does no better than this has not shown that it reads the rubric.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from hmx.chat_template import user_prompt
from hmx.judge.validity.accuracy import outcome
from hmx.rubrics.pairs import LabelledPair


@torch.no_grad()
def reply_logprobs(
    model: torch.nn.Module,
    tokenizer,
    rows: Sequence[tuple[str, str]],
    device: torch.device,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> list[float]:
    """Sum of the reply tokens' log-probabilities for each (user message, reply) row (``progress(done, total)``
    after each batch)."""
    encoded = []
    for message, reply in rows:
        context = tokenizer(user_prompt(tokenizer, message), add_special_tokens=False)["input_ids"]
        answer = tokenizer(reply, add_special_tokens=False)["input_ids"]
        encoded.append((context, answer))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[float] = []
    if progress:
        progress(0, len(encoded))
    for start in range(0, len(encoded), batch_size):
        part = encoded[start : start + batch_size]
        width = max(len(c) + len(a) for c, a in part)
        ids = torch.full((len(part), width), pad, dtype=torch.long)
        mask = torch.zeros((len(part), width), dtype=torch.long)
        for i, (c, a) in enumerate(part):  # right padding: positions are those of an unpadded row
            ids[i, : len(c) + len(a)] = torch.tensor(c + a)
            mask[i, : len(c) + len(a)] = 1
        # only the positions that predict a reply token get the vocabulary projection: from the shortest
        # context's last token on (the contexts, a chat template around the message, are the longer part)
        first = min(len(c) for c, _ in part) - 1
        output = model(input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=width - first)
        logits = output.logits.float()  # positions first .. width - 1
        targets = ids[:, first + 1 :, None].to(device)
        logprobs = F.log_softmax(logits[:, :-1], dim=-1).gather(-1, targets)[..., 0].cpu()
        for i, (c, a) in enumerate(part):
            out.append(float(logprobs[i, len(c) - 1 - first : len(c) + len(a) - 1 - first].sum()))
        if progress:
            progress(len(out), len(encoded))
    return out


def fluency_outcomes(
    model: torch.nn.Module,
    tokenizer,
    pairs: Sequence[LabelledPair],
    device: torch.device,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> list[float]:
    """1/0.5/0 per pair: is the chosen reply the more probable one after the user's message?"""
    rows = list(dict.fromkeys((p.prompt, reply) for p in pairs for reply in (p.chosen, p.rejected)))
    scores = reply_logprobs(model, tokenizer, rows, device, batch_size, progress)
    index = dict(zip(rows, scores, strict=True))
    return [outcome(index[(p.prompt, p.chosen)], index[(p.prompt, p.rejected)]) for p in pairs]

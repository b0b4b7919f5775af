"""The fluency baseline projects only the positions that predict reply tokens, and gets what the full logits give."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hmx.chat_template import user_prompt
from hmx.judge.validity.fluency import reply_logprobs

ROWS = [  # contexts of different lengths in one batch, and a reply longer than the shortest context
    ("Hi.", "I feel glad you asked, and I mean it."),
    ("A much longer message from the user, with several clauses, asking about the weather today.", "Sunny."),
    ("Why?", "Because I wanted to help."),
]


def full_logits_reference(model, tokenizer, rows):
    """One row at a time, every position projected: the plain computation."""
    out = []
    for message, reply in rows:
        context = tokenizer(user_prompt(tokenizer, message), add_special_tokens=False)["input_ids"]
        answer = tokenizer(reply, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([context + answer])
        logprobs = F.log_softmax(model(input_ids=ids).logits.float()[0, :-1], dim=-1)
        picked = logprobs.gather(-1, ids[0, 1:, None])[:, 0]
        out.append(float(picked[len(context) - 1 :].sum()))
    return out


def test_reply_logprobs_equal_the_full_logits_computation(tiny_model, tiny_tokenizer):
    with torch.no_grad():
        expected = full_logits_reference(tiny_model, tiny_tokenizer, ROWS)
    batched = reply_logprobs(tiny_model, tiny_tokenizer, ROWS, torch.device("cpu"), batch_size=3)
    assert batched == pytest.approx(expected, rel=1e-4, abs=1e-3)

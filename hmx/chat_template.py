"""Conversations as text in a model's own chat template: the one renderer of the judge, eval and the checks.

A tokenizer with no chat template (a base model) gets a plain transcript instead
(``User: …`` turns, then ``Assistant:``), the same for every caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase


def chat_prompt(
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[dict[str, Any]],
    prefill: str = "",
    thinking: bool | None = False,
) -> str:
    """The conversation with the assistant's turn opened and pre-filled with ``prefill``.

    ``thinking``: the template's ``enable_thinking`` (False: thinking off where the template has it;
    None: the template's default, as TRL renders the policy's prompts).
    """
    if not getattr(tokenizer, "chat_template", None):
        turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n\n".join([*turns, f"Assistant:{' ' + prefill if prefill else ''}"])
    switch: dict[str, Any] = {} if thinking is None else {"enable_thinking": thinking}
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True, **switch)
    return str(text) + prefill


def user_prompt(tokenizer: PreTrainedTokenizerBase, message: str, prefill: str = "", system: str | None = None) -> str:
    """One user message (after an optional system message) in the chat template, thinking off, pre-filled."""
    messages = [{"role": "system", "content": system}] if system is not None else []
    return chat_prompt(tokenizer, [*messages, {"role": "user", "content": message}], prefill)


def message_text(item: Any) -> str:
    """Plain text of a TRL prompt or completion (a string, or a list of chat messages)."""
    if isinstance(item, str):
        return item
    if isinstance(item, list) and item:
        last = item[-1]
        content = last.get("content", "") if isinstance(last, dict) else str(last)
        if isinstance(content, list):
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    return ""

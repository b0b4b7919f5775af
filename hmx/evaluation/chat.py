"""Conversations as text in the evaluated model's chat template (a plain transcript without one)."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase


def chat_prompt(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], prefill: str = "") -> str:
    """The conversation with the assistant's turn opened (thinking off where the template has it) and pre-filled."""
    if not getattr(tokenizer, "chat_template", None):
        turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n\n".join([*turns, f"Assistant:{' ' + prefill if prefill else ''}"])
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    return str(text) + prefill

"""Judge inputs as chat text: the rubric prompt in the model's chat template, one row per criterion.

Rows are completion-major (all criteria of completion i are adjacent). Rendering the sandboxed
rubric template and the chat template for every (completion, criterion) row costs more than the
judge's forward pass on a small model, and almost all of it is the same text each time. So each
criterion's chat text is rendered once, with sentinels where the prompt and the completion go,
and split into frames; a row is ``frame[0] + prompt + frame[1] + completion + frame[2]``, the
user's text spliced in (never substituted into, so it cannot forge a sentinel). Whether splicing
gives exactly what rendering each row gives is checked once, on probe rows, and when the
template transforms the quoted text or puts it at the message's edge, every row is rendered.
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from hmx.chat_template import user_prompt
from hmx.config import JudgeConfig
from hmx.rubrics.render import defuse, render_judge_message, strip_thinking
from hmx.rubrics.schema import Rubric

PROMPT_SENTINEL = "\u27e6hmx-prompt-5c1e\u27e7"
COMPLETION_SENTINEL = "\u27e6hmx-completion-5c1e\u27e7"
PROBE = [  # (prompt, completion) rows on which the fast input paths are checked against the plain ones
    ("A user's message.", "An example reply."),
    ("Another one?\n  Two lines.", "<think>x</think>I feel glad.\nOk."),
]


def special_tokens(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Every special token string of the tokenizer (defused inside quoted text)."""
    added = getattr(tokenizer, "added_tokens_decoder", {}).values()
    return sorted(set(tokenizer.all_special_tokens) | {token.content for token in added})


def has_thinking_mode(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the model writes ``<think>`` blocks: a ``<think>`` token or a chat template that mentions it."""
    return "<think>" in special_tokens(tokenizer) or "<think>" in str(getattr(tokenizer, "chat_template", "") or "")


def chat_text(tokenizer: PreTrainedTokenizerBase, user_message: str, prefill: str) -> str:
    """The judge conversation as text: the model's own chat template, assistant turn pre-filled."""
    return user_prompt(tokenizer, user_message, prefill)


class JudgePrompts:
    """Chat texts of judge rows for one rubric, mode and pre-fill (see the module docstring)."""

    def __init__(self, rubric: Rubric, tokenizer: PreTrainedTokenizerBase, cfg: JudgeConfig, mode: str, prefill: str):
        self.rubric, self.tokenizer, self.cfg = rubric, tokenizer, cfg
        self.mode, self.prefill = mode, prefill
        self.special = special_tokens(tokenizer)
        self.thinking = has_thinking_mode(tokenizer)
        self.frames: list[tuple[str, ...]] | None = [self.frame(c) for c in range(len(rubric.criteria))]
        if any(not frame for frame in self.frames) or not self.splice_matches_render():
            self.frames = None

    def frame(self, criterion: int) -> tuple[str, ...]:
        """The criterion's chat text split around the two sentinels, or ``()`` where it cannot be."""
        message = render_judge_message(
            self.rubric, self.rubric.criteria[criterion], PROMPT_SENTINEL, COMPLETION_SENTINEL, mode=self.mode
        )
        if message.startswith(PROMPT_SENTINEL) or message.endswith(COMPLETION_SENTINEL):
            return ()  # the message's strip() would reach the user's text
        text = chat_text(self.tokenizer, message, self.prefill)
        head, found, rest = text.partition(PROMPT_SENTINEL)
        middle, found_too, tail = rest.partition(COMPLETION_SENTINEL)
        if not (found and found_too) or PROMPT_SENTINEL in tail or COMPLETION_SENTINEL in head + middle + tail:
            return ()
        return head, middle, tail

    def rendered(self, prompts: Sequence[str], completions: Sequence[str]) -> list[str]:
        """Every row rendered in full: the reference the frames must equal."""
        cfg = self.cfg
        return [
            chat_text(
                self.tokenizer,
                render_judge_message(
                    self.rubric,
                    criterion,
                    prompt[: cfg.max_prompt_chars],
                    completion[: cfg.max_completion_chars],
                    self.special,
                    mode=self.mode,
                    thinking=self.thinking,
                ),
                self.prefill,
            )
            for prompt, completion in zip(prompts, completions, strict=True)
            for criterion in self.rubric.criteria
        ]

    def texts(self, prompts: Sequence[str], completions: Sequence[str]) -> list[str]:
        """Judge inputs, completion-major, ending where the judge's answer starts."""
        if self.frames is None:
            return self.rendered(prompts, completions)
        cfg, rows = self.cfg, []
        for prompt, completion in zip(prompts, completions, strict=True):
            quoted_prompt = defuse(prompt[: cfg.max_prompt_chars], self.special)
            quoted = defuse(strip_thinking(completion[: cfg.max_completion_chars], self.thinking), self.special)
            rows += [head + quoted_prompt + middle + quoted + tail for head, middle, tail in self.frames]
        return rows

    def splice_matches_render(self) -> bool:
        prompts, completions = zip(*PROBE, strict=True)
        return self.texts(prompts, completions) == self.rendered(prompts, completions)

"""Completions before and after training: a few held-out prompts, answered greedily by the base and the trained model.

The prompts are chosen by a rule, never by reading answers (docs/preregistration.md): the first
prompt of the data's eval split (else its train split) whose ``category`` is each of the rubric's
criteria in rubric order, then the first remaining prompts in file order up to ``count``. At the end of
training the policy answers each one twice, with its LoRA adapter off (before: the base model) and on
(after), and the run directory gets ``before_after.jsonl`` (one row per prompt) and
``before_after.md`` (a table), the same names in every run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase, TrainerCallback

from hmx.chat_template import chat_prompt
from hmx.config import DataConfig
from hmx.data import load_prompts
from hmx.decoding import greedy_decode
from hmx.rubrics.schema import Rubric

FILES = ("before_after.jsonl", "before_after.md")


@dataclass
class Prompt:
    id: str
    category: str
    messages: list[dict[str, str]]  # the conversation as the policy sees it (system prompt included)

    @property
    def text(self) -> str:
        return self.messages[-1]["content"]


def pick_prompts(data: DataConfig, rubric: Rubric, count: int) -> list[Prompt]:
    """The rule above: one prompt per criterion's category, then file order, ``count`` in all."""
    if count <= 0:
        return []
    rows = list(load_prompts(replace(data, max_samples=None), split=data.eval_split or data.train_split))
    prompts = [
        Prompt(str(row.get("id", index)), str(row.get("category", "")), list(row["prompt"]))
        for index, row in enumerate(rows)
    ]
    chosen: list[Prompt] = []
    for criterion in (c for c in rubric.criteria if not c.guard):
        match = next((p for p in prompts if p.category == criterion.name and p not in chosen), None)
        if match is not None and len(chosen) < count:
            chosen.append(match)
    chosen += [p for p in prompts if p not in chosen][: count - len(chosen)]
    return chosen


def answer(model: Any, tokenizer: PreTrainedTokenizerBase, prompts: list[Prompt], max_new_tokens: int) -> list[str]:
    """Greedy answers in the chat template (the policy's own rendering of its prompts)."""
    texts = [chat_prompt(tokenizer, p.messages, thinking=None) for p in prompts]
    device = next(model.parameters()).device
    return greedy_decode(
        model,
        tokenizer,
        texts,
        batch_size=len(texts),
        max_new_tokens=max_new_tokens,
        device=device,
        desc="before/after",
    )


def before_and_after(
    model: Any, tokenizer: PreTrainedTokenizerBase, prompts: list[Prompt], max_new_tokens: int, show: bool = False
) -> list[dict[str, str]]:
    """Each prompt's greedy answer with the adapter off (before) and on (after), in eval mode (no dropout);
    ``show``: a progress bar over the two passes."""
    was_training = model.training
    model.eval()
    desc = f"before/after: {len(prompts)} prompts, adapter off then on"
    bar = tqdm(total=2, desc=desc, unit="pass", disable=not show)
    try:
        with model.disable_adapter():
            before = answer(model, tokenizer, prompts, max_new_tokens)
        bar.update()
        after = answer(model, tokenizer, prompts, max_new_tokens)
        bar.update()
    finally:
        bar.close()
        model.train(was_training)
    return [
        {"id": p.id, "category": p.category, "prompt": p.text, "before": b, "after": a}
        for p, b, a in zip(prompts, before, after, strict=True)
    ]


def write_before_after(run_dir: Path, rows: list[dict[str, str]], steps: int) -> None:
    """``before_after.jsonl`` and ``before_after.md`` in the run directory."""
    with (run_dir / FILES[0]).open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    cell = lambda text: " ".join(text.split()).replace("|", "\\|") or "(empty)"  # noqa: E731
    lines = [
        f"# Before and after training ({steps} steps; greedy answers, the base model = the adapter off)",
        "",
        "The first held-out prompt of each rubric criterion's category (docs/preregistration.md's rule).",
        "",
        "| prompt | before | after |",
        "|---|---|---|",
        *[f"| {cell(r['prompt'])} | {cell(r['before'])} | {cell(r['after'])} |" for r in rows],
    ]
    (run_dir / FILES[1]).write_text("\n".join(lines) + "\n", encoding="utf-8")


class BeforeAfter(TrainerCallback):
    """At the end of training, answer the chosen prompts before and after; rank 0 writes the files."""

    def __init__(
        self, run_dir: Path, tokenizer: PreTrainedTokenizerBase, prompts: list[Prompt], max_new_tokens: int = 64
    ):
        self.run_dir, self.tokenizer, self.prompts, self.max_new_tokens = run_dir, tokenizer, prompts, max_new_tokens
        self.rows: list[dict[str, str]] = []

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        # one process only: a ZeRO-3 shard cannot generate alone (hmx eval's expression.jsonl covers multi-rank runs)
        stopped = state.global_step < state.max_steps  # a pre-empted run leaves at once (hmx/preemption.py)
        if stopped or not self.prompts or model is None or args.world_size > 1 or not hasattr(model, "disable_adapter"):
            return
        with torch.no_grad():
            show = bool(state.is_world_process_zero)
            self.rows = before_and_after(model, self.tokenizer, self.prompts, self.max_new_tokens, show)
        if state.is_world_process_zero:
            write_before_after(self.run_dir, self.rows, state.global_step)

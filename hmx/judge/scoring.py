"""The self-judge in logprob mode: one teacher-forced forward pass, expected score (G-Eval).

For each (completion, criterion) the rubric prompt is rendered with the model's own chat
template and pre-filled up to the score (``Score: ``); the probabilities of the score labels
at the next position give the expected score. Labels must be single tokens: checked at
start-up. Batches follow a fixed schedule (``batch_size`` rows per forward call, never split
by length), so under ZeRO-3 every rank makes the same number of forward calls.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from hmx.config import JudgeConfig
from hmx.rubrics.render import render_judge_message
from hmx.rubrics.schema import Criterion, Rubric, RubricError


@dataclass
class Verdicts:
    """Judge output for N completions × C criteria."""

    scores: torch.Tensor  # [N, C] expected raw score on the criterion's scale (NaN where invalid)
    label_probs: list[list[list[float]]]  # [N][C][levels] probabilities renormalised over the labels
    label_mass: torch.Tensor  # [N, C] probability the model put on any label before renormalising


def expected_scores(
    last_logits: torch.Tensor, label_ids: Sequence[int], values: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Expected score from next-token logits ``[B, V]``.

    Returns (expected ``[B]``, label probabilities renormalised over the labels ``[B, L]``,
    the total probability on the labels ``[B]``).
    """
    logprobs = torch.log_softmax(last_logits.float(), dim=-1)
    label_logprobs = logprobs[:, list(label_ids)]
    mass = label_logprobs.exp().sum(-1)
    probs = torch.softmax(label_logprobs, dim=-1)
    expected = probs @ torch.tensor(list(values), dtype=probs.dtype, device=probs.device)
    return expected, probs, mass


def chat_text(tokenizer: PreTrainedTokenizerBase, user_message: str, prefill: str) -> str:
    """The judge conversation as text: the model's own chat template, assistant turn pre-filled."""
    messages = [{"role": "user", "content": user_message}]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )
    else:
        text = user_message + "\n"
    return str(text) + prefill


def single_token_label_ids(
    tokenizer: PreTrainedTokenizerBase, rubric: Rubric, criterion: Criterion, prefill: str
) -> list[int]:
    """Token id of each label as it follows the pre-filled judge prompt; fails unless each is one token."""
    context = chat_text(tokenizer, render_judge_message(rubric, criterion, "example", "example"), prefill)
    base = tokenizer(context, add_special_tokens=False)["input_ids"]
    ids = []
    for index, label in enumerate(criterion.labels):
        full = tokenizer(context + label, add_special_tokens=False)["input_ids"]
        if full[: len(base)] != base or len(full) != len(base) + 1:
            pieces = tokenizer.convert_ids_to_tokens(full[len(base) - 1 :])
            raise RubricError(
                f"{rubric.source}: criteria[{rubric.criteria.index(criterion)}].scale[{index}].label: "
                f"{label!r} is not a single token for this tokenizer after the pre-fill {prefill!r} "
                f"(it encodes as {pieces}); use single-token labels such as 1-5 or A-E"
            )
        ids.append(full[-1])
    if len(set(ids)) != len(ids):
        raise RubricError(f"{rubric.source}: criterion {criterion.name!r}: two labels map to the same token")
    return ids


@contextlib.contextmanager
def judging(model: torch.nn.Module, weights: str) -> Iterator[None]:
    """Eval mode, no grad, and the adapter disabled when ``weights == 'base'`` (a frozen judge)."""
    was_training = model.training
    model.eval()
    disable_adapter = getattr(model, "disable_adapter", None)
    adapter_off = disable_adapter() if weights == "base" and disable_adapter else contextlib.nullcontext()
    try:
        with torch.no_grad(), adapter_off:
            yield
    finally:
        model.train(was_training)


class LogprobJudge:
    """Scores completions against every criterion of a rubric with the policy's own weights."""

    def __init__(self, rubric: Rubric, tokenizer: PreTrainedTokenizerBase, cfg: JudgeConfig):
        self.rubric = rubric
        self.tokenizer = tokenizer
        self.cfg = cfg
        added = getattr(tokenizer, "added_tokens_decoder", {}).values()
        self.special_tokens = sorted(set(tokenizer.all_special_tokens) | {token.content for token in added})
        self.label_ids = [single_token_label_ids(tokenizer, rubric, c, cfg.prefill) for c in rubric.criteria]

    def texts(self, prompts: Sequence[str], completions: Sequence[str]) -> list[str]:
        """Judge inputs, completion-major: all criteria of completion i are adjacent."""
        cfg = self.cfg
        return [
            chat_text(
                self.tokenizer,
                render_judge_message(
                    self.rubric,
                    criterion,
                    prompt[: cfg.max_prompt_chars],
                    completion[: cfg.max_completion_chars],
                    self.special_tokens,
                ),
                cfg.prefill,
            )
            for prompt, completion in zip(prompts, completions, strict=True)
            for criterion in self.rubric.criteria
        ]

    def last_logits(self, model: torch.nn.Module, texts: list[str], device: torch.device) -> torch.Tensor:
        """Next-token logits after each text, in fixed-size left-padded micro-batches."""
        size = self.cfg.batch_size
        out = []
        for start in range(0, len(texts), size):
            batch = self.tokenizer(
                texts[start : start + size],
                add_special_tokens=False,
                padding=True,
                padding_side="left",
                return_tensors="pt",
            ).to(device)
            positions = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
            logits = model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                position_ids=positions,
                logits_to_keep=1,
                use_cache=False,
            ).logits
            out.append(logits[:, -1, :].float())
        return torch.cat(out) if out else torch.empty(0)

    def score(
        self, model: torch.nn.Module, prompts: Sequence[str], completions: Sequence[str], device: torch.device
    ) -> Verdicts:
        n, c = len(completions), len(self.rubric.criteria)
        with judging(model, self.cfg.weights):
            logits = self.last_logits(model, self.texts(prompts, completions), device)
        logits = logits.view(n, c, -1)
        scores = torch.full((n, c), float("nan"))
        mass = torch.zeros(n, c)
        probs: list[list[list[float]]] = [[[] for _ in range(c)] for _ in range(n)]
        for j, criterion in enumerate(self.rubric.criteria):
            expected, label_probs, label_mass = expected_scores(logits[:, j, :], self.label_ids[j], criterion.values)
            scores[:, j] = expected.cpu()
            mass[:, j] = label_mass.cpu()
            for i in range(n):
                probs[i][j] = label_probs[i].tolist()
        return Verdicts(scores=scores, label_probs=probs, label_mass=mass)

"""The self-judge in contrastive mode: how much likelier is the reply under the top anchor than the bottom one?

For each (completion, criterion) the completion is teacher-forced twice as the assistant's turn
of a conversation whose system message describes the criterion's top level (its last anchor),
then its bottom level (its first anchor). The score is the difference of the completion's mean
per-token log-likelihood under the two contexts, mapped onto the criterion's scale with a
logistic: ``min + (max - min) * sigmoid(judge.contrastive.scale * delta)``. No label is read, so
the score does not depend on a small model following grading instructions; it asks only which
description makes this reply more expected.

Inputs: the user's prompt and the completion are defused (tokenizer special tokens split, so the
completion cannot forge a turn or a system message) and the completion's ``<think>`` block is
removed; the completion is tokenized once and the same ids follow both contexts, so the two
likelihoods are of identical tokens. The completion can only change its own likelihood: nothing
it writes is read as an instruction to grade.

Call schedule (ZeRO-3 safety): ``2 * N * C`` rows (completion-major, criterion, then top/bottom),
``judge.batch_size`` rows per forward call: ``ceil(2 N C / B)`` calls, a function of N, C, B only.
The anchors precede the completion, so the completion cannot be a shared prefix; rows are
left-padded and only the completion's positions are projected (``logits_to_keep``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from hmx.chat_template import user_prompt
from hmx.config import JudgeConfig, ModeOptions
from hmx.judge.engine.packing import left_pad
from hmx.judge.engine.prompts import special_tokens
from hmx.judge.engine.schedule import scheduled_pass
from hmx.judge.protocol import JudgeBase, node_options
from hmx.judge.verdicts import Verdicts, judging, on_scale
from hmx.models import pad_token_id
from hmx.rubrics.render import defuse, strip_thinking
from hmx.rubrics.schema import Criterion, Rubric

SYSTEM = "You are an AI assistant. {description} In this conversation, your replies are like this: {anchor}"


def context_text(tokenizer: PreTrainedTokenizerBase, system: str, prompt: str) -> str:
    """The conversation up to the assistant's reply, in the model's chat template."""
    return user_prompt(tokenizer, prompt, system=system)


def anchor_systems(criterion: Criterion) -> tuple[str, str]:
    """System messages for the criterion's top and bottom level (the scale's last and first anchor)."""
    top, bottom = criterion.scale[-1], criterion.scale[0]
    if top.value < bottom.value:
        top, bottom = bottom, top
    return (
        SYSTEM.format(description=criterion.description, anchor=top.anchor),
        SYSTEM.format(description=criterion.description, anchor=bottom.anchor),
    )


def contrastive_calls(completions: int, criteria: int, batch_size: int) -> int:
    """Forward calls for a batch: ``ceil(2 N C / B)``, from N, C and B only (ZeRO-3 safety)."""
    return -(-2 * completions * criteria // batch_size)


@dataclass
class ContrastiveOptions(ModeOptions):
    """``judge.contrastive``: the logistic that maps the likelihood gap to the scale."""

    scale: float = 10.0  # score = min + range * sigmoid(scale * log-likelihood gap)


class ContrastiveJudge(JudgeBase):
    """Scores completions by their likelihood under each criterion's top vs bottom anchor (policy weights)."""

    independent_criteria = True  # a criterion's score does not depend on the rubric's other criteria

    def __init__(self, rubric: Rubric, tokenizer: PreTrainedTokenizerBase, cfg: JudgeConfig):
        self.rubric, self.tokenizer, self.cfg = rubric, tokenizer, cfg
        self.options = node_options(cfg, "contrastive", ContrastiveOptions)
        self.special = special_tokens(tokenizer)
        self.systems = [anchor_systems(c) for c in rubric.criteria]

    def texts(self, prompts: Sequence[str], completions: Sequence[str]) -> list[str]:
        """Each row's full text (context, then the reply), in row order: what the judge reads."""
        return [str(self.tokenizer.decode(context + reply)) for context, reply in self.rows(prompts, completions)]

    def rows(self, prompts: Sequence[str], completions: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """``(context ids, completion ids)`` per row: completion-major, then criterion, then top/bottom."""
        cfg, out = self.cfg, []
        encode = lambda text: list(self.tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
        for prompt, completion in zip(prompts, completions, strict=True):
            quoted_prompt = defuse(prompt[: cfg.max_prompt_chars], self.special)
            reply = encode(defuse(strip_thinking(completion[: cfg.max_completion_chars]), self.special))
            reply = reply or [self.tokenizer.eos_token_id or 0]  # an empty reply: score its end token
            for top, bottom in self.systems:
                for system in (top, bottom):
                    out.append((encode(context_text(self.tokenizer, system, quoted_prompt)), reply))
        return out

    def mean_logprobs(self, model: torch.nn.Module, rows: list[tuple[list[int], list[int]]], device: torch.device):
        """Mean log-probability of each row's completion tokens given its context, ``B`` rows per call."""
        size, pad_id = self.cfg.batch_size, pad_token_id(self.tokenizer)
        out = []
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            ids, mask, positions = left_pad([context + reply for context, reply in batch], pad_id, device)
            length = ids.shape[1]
            keep = max(len(reply) for _, reply in batch) + 1  # logits that predict every reply token
            logits = model(
                input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep, use_cache=False
            ).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1)  # position t predicts token t + 1
            targets = ids[:, length - keep + 1 :]
            picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            for b, (_, reply) in enumerate(batch):
                out.append(picked[b, keep - 1 - len(reply) :].mean().cpu())
        return torch.stack(out) if out else torch.empty(0)

    def score(
        self, model: torch.nn.Module, prompts: Sequence[str], completions: Sequence[str], device: torch.device
    ) -> Verdicts:
        n, c = len(completions), len(self.rubric.criteria)
        rows = self.rows(prompts, completions)
        with (
            judging(model, self.cfg.weights),
            scheduled_pass(model, contrastive_calls(n, c, self.cfg.batch_size), device),
        ):
            means = self.mean_logprobs(model, rows, device) if rows else torch.empty(0)
        return self.verdicts(means.view(n, c, 2))

    def verdicts(self, means: torch.Tensor) -> Verdicts:
        """Scores from mean log-likelihoods ``[N, C, 2]`` (top, bottom); label_probs ``[P(top), P(bottom)]``."""
        n, c = means.shape[:2]
        delta = means[..., 0] - means[..., 1]
        p_top = torch.sigmoid(self.options.scale * delta)
        scores = on_scale(self.rubric, p_top) if n else torch.full((0, c), float("nan"))
        probs = [[[float(p_top[i, j]), 1.0 - float(p_top[i, j])] for j in range(c)] for i in range(n)]
        return Verdicts(scores=scores.float(), label_probs=probs, label_mass=torch.ones(n, c))

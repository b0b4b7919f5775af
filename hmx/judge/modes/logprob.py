"""The self-judge in logprob mode: one teacher-forced forward pass, expected score (G-Eval).

For each (completion, criterion) the rubric prompt is rendered with the model's own chat
template and pre-filled up to the score (``Score: ``); the probabilities of the score labels
at the next position give the expected score. Labels must be single tokens: checked at
start-up.

Shared-prefix packing, at two levels. Every row is tokenized once (one batched tokenizer call).
(1) The token prefix common to *every* row of the batch (the instructions and the rubric's
scales, which the default template puts before the quoted conversation) is encoded once per
judge pass, in its own forward call, and its keys and values are reused by every row (a
read-only cache, :mod:`hmx.judge.engine.prefix_cache`). (2) The rows of one completion share everything
up to the question that names the criterion, so they are packed into one sequence,
``prefix + suffix_1 + … + suffix_g``, with a 4D attention mask in which each suffix sees the
cached static prefix, the completion's prefix and itself (never another suffix), and position
ids that restart after the prefix, so each suffix is computed exactly as in its own full row.
Logits are projected only at the g suffix ends (``logits_to_keep`` as per-row positions, in the
head weight's own dtype). The rubric is thus encoded once per
batch and the completion once for all its criteria; scores equal the one-row-per-criterion path
(:meth:`LogprobJudge.last_logits`) within float tolerance.

Call schedule (ZeRO-3 safety: every rank must make the same number of forward calls). With N
completions, C criteria and ``B = judge.batch_size``: a packed unit holds ``g = min(C, B)``
criteria of one completion, so there are ``U = N * ceil(C / g)`` units, ``max(1, B // g)``
units per forward call and ``1 + ceil(U / max(1, B // g))`` calls (the first encodes the static
prefix; ``judge.prefix_cache=false`` drops that call and the cache, trading speed for the cache's
memory: every unit then holds the whole prefix). Each call scores at most B (completion,
criterion) rows. The count depends on N, C, B and the config only, never on lengths or content
(lengths only decide which units share a call, to reduce padding). Under ``torch.distributed``
the ranks agree on the most calls any of them will make before the first forward, and a rank
with fewer (fewer completions) pads with one-token calls (:func:`agree_calls`, :func:`pad_calls`).
Attention implementations that cannot take a custom mask (flash-attention kernels) use the
one-row-per-criterion path instead: ``ceil(N * C / B)`` calls; the choice is made from the
model's config, the same on every rank.

Token budget (``judge.max_batch_tokens``; by default sized by device on a GPU, off on CPU): the
units (or rows) are grouped by padded tokens per call instead of ``B`` per call, shortest first,
so that a GPU gets few large calls. The count then depends on the lengths; it is computed from
the tokenized rows before the first forward (:meth:`LogprobJudge.planned_calls`) and agreed
across ranks in the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from hmx.config import JudgeConfig
from hmx.judge.engine.packing import (
    MASKABLE_ATTENTION,
    PackedUnit,
    drop_static,
    left_pad,
    pack_unit,
    packed_attention_mask,
    shared_prefix_length,
)
from hmx.judge.engine.prefix_cache import (
    CACHE_KEYWORD,
    logits_in_weight_dtype,
    output_head,
    read_only_cache,
    static_prefix_cache,
)
from hmx.judge.engine.prompts import PROBE, JudgePrompts, chat_text
from hmx.judge.engine.schedule import forward_calls as forward_calls  # re-exported: the fixed schedule's count
from hmx.judge.engine.schedule import group_calls, scheduled_pass, token_budget
from hmx.judge.engine.tokens import RowTokenizer
from hmx.judge.protocol import JudgeBase
from hmx.judge.verdicts import Verdicts, judging
from hmx.models import pad_token_id
from hmx.rubrics.render import render_judge_message
from hmx.rubrics.schema import Criterion, Rubric, RubricError


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


@dataclass
class PackedPlan:
    """The packed path's work for one judge pass: decided from token rows before any forward call."""

    static: int  # tokens shared by every row, encoded once in their own call (the prefix cache)
    units: list[PackedUnit]
    calls: list[list[int]]  # unit indices per forward call
    prefix_call: bool  # whether the static prefix gets its call


class LogprobJudge(JudgeBase):
    """Scores completions against every criterion of a rubric with the policy's own weights."""

    def __init__(self, rubric: Rubric, tokenizer: PreTrainedTokenizerBase, cfg: JudgeConfig):
        self.rubric = rubric
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.label_ids = [single_token_label_ids(tokenizer, rubric, c, cfg.prefill) for c in rubric.criteria]
        self.prompts = JudgePrompts(rubric, tokenizer, cfg, "logprob", cfg.prefill)
        self.rows = RowTokenizer(tokenizer, len(rubric.criteria), self.texts(*zip(*PROBE, strict=True)))

    forward_options: dict[str, bool] = {}  # extra keyword arguments of every judge forward

    def readout(self, output: Any, ends: torch.Tensor) -> torch.Tensor:
        """What a row's score is read from, ``[B, W, F]`` at the ``[B, W]`` row ends: here the next-token
        logits (the forward kept only those positions); probe mode (ProbeJudge) reads a hidden state."""
        return output.logits.float()

    def texts(self, prompts: Sequence[str], completions: Sequence[str]) -> list[str]:
        """Judge inputs, completion-major: all criteria of completion i are adjacent."""
        return self.prompts.texts(prompts, completions)

    def row_calls(self, rows: Sequence[list[int]], budget: int = 0) -> list[list[int]]:
        """Row indices per forward call of the one-row-per-criterion path (``budget``: tokens per call)."""
        return group_calls([len(row) for row in rows], self.cfg.batch_size, budget)

    def last_logits(
        self,
        model: torch.nn.Module,
        texts: list[str],
        device: torch.device,
        budget: int = 0,
        rows: Sequence[list[int]] | None = None,
    ) -> torch.Tensor:
        """One row per text: next-token logits after each, in left-padded calls (:meth:`row_calls`)."""
        rows = self.rows(texts) if rows is None else rows
        pad_id = pad_token_id(self.tokenizer)
        out = torch.empty(len(rows), 0)
        for call in self.row_calls(rows, budget):
            input_ids, attention_mask, positions = left_pad([rows[i] for i in call], pad_id, device)
            output = model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=positions,
                logits_to_keep=1,
                use_cache=False,
                **self.forward_options,
            )
            last = torch.full((len(call), 1), input_ids.shape[1] - 1, device=input_ids.device)
            logits = self.readout(output, last)[:, 0, :]
            if out.shape[1] == 0:
                out = torch.empty(len(rows), logits.shape[-1], device=logits.device)
            out[call] = logits
        return out

    def packed_units(self, rows: Sequence[list[int]], criteria: int, static: int = 0) -> list[PackedUnit]:
        """Pack each completion's token rows, ``min(C, B)`` criteria per unit, less the ``static`` shared tokens."""
        group = min(criteria, self.cfg.batch_size)
        units = []
        for first in range(0, len(rows), criteria):
            for start in range(first, first + criteria, group):
                ids = list(range(start, min(start + group, first + criteria)))
                units.append(drop_static(pack_unit(ids, [rows[i] for i in ids]), static))
        return units

    def packed_plan(self, rows: Sequence[list[int]], budget: int = 0) -> PackedPlan:
        """The packed path's units and calls, from the token rows alone (before any forward)."""
        criteria = len(self.rubric.criteria)
        static = shared_prefix_length(rows) if self.cfg.prefix_cache and rows else 0
        units = self.packed_units(rows, criteria, static)
        per_call = max(1, self.cfg.batch_size // min(criteria, self.cfg.batch_size))
        calls = group_calls([len(unit.tokens) for unit in units], per_call, budget)
        return PackedPlan(static, units, calls, prefix_call=bool(self.cfg.prefix_cache and rows))

    def packed_last_logits(
        self,
        model: torch.nn.Module,
        texts: list[str],
        device: torch.device,
        budget: int = 0,
        rows: Sequence[list[int]] | None = None,
    ) -> torch.Tensor:
        """Next-token logits after each text, computed with shared-prefix packing (see the module docstring)."""
        rows = self.rows(texts) if rows is None else rows
        plan = self.packed_plan(rows, budget)
        static, units = plan.static, plan.units
        cache = static_prefix_cache(model, rows[0][:static], device) if plan.prefix_call else None
        config = getattr(model, "config", None)
        sliding = getattr(config, "sliding_window", None)
        layer_types = set(getattr(config, "layer_types", None) or ())
        dtype = next(model.parameters()).dtype
        out = torch.empty(len(texts), 0)
        for call in plan.calls:
            batch = [units[u] for u in call]
            length = max(len(unit.tokens) for unit in batch)
            pad_id = pad_token_id(self.tokenizer)
            input_ids = torch.tensor([[pad_id] * (length - len(u.tokens)) + u.tokens for u in batch])
            positions = torch.tensor([[0] * (length - len(u.tokens)) + u.positions for u in batch])
            width = max(len(u.ends) for u in batch)
            ends = torch.tensor(
                [[length - len(u.tokens) + e for e in u.ends + u.ends[-1:] * (width - len(u.ends))] for u in batch]
            )
            segments = torch.tensor([[-1] * (length - len(u.tokens)) + u.segments for u in batch], device=device)
            positions = positions.to(device)
            full_window = None if layer_types else sliding
            masks = {"full_attention": packed_attention_mask(segments, positions, full_window, dtype, static)}
            if "sliding_attention" in layer_types and sliding is not None:
                masks["sliding_attention"] = packed_attention_mask(segments, positions, sliding, dtype, static)
            with output_head(model, logits_in_weight_dtype):
                output = model(
                    input_ids=input_ids.to(device),
                    attention_mask=masks if len(masks) > 1 else masks["full_attention"],
                    position_ids=positions,
                    logits_to_keep=ends.to(device),
                    use_cache=cache is not None,
                    **{CACHE_KEYWORD: read_only_cache(cache) if cache is not None else None},
                    **self.forward_options,
                )
                logits = self.readout(output, ends.to(device))
            if out.shape[1] == 0:
                out = torch.empty(len(texts), logits.shape[-1], device=logits.device)
            for b, unit in enumerate(batch):
                out[unit.rows] = logits[b, : len(unit.rows)]
        return out

    def shares_prefix(self, model: torch.nn.Module) -> bool:
        """Packing needs an attention implementation that takes a custom mask (decided from config only)."""
        config = getattr(model, "config", None)
        return getattr(config, "_attn_implementation", "sdpa") in MASKABLE_ATTENTION

    def planned_calls(self, model: torch.nn.Module, rows: Sequence[list[int]], budget: int) -> int:
        """This rank's forward calls for these token rows (before agreeing with the other ranks)."""
        if self.shares_prefix(model):
            plan = self.packed_plan(rows, budget)
            return int(plan.prefix_call) + len(plan.calls)
        return len(self.row_calls(rows, budget))

    def score(
        self, model: torch.nn.Module, prompts: Sequence[str], completions: Sequence[str], device: torch.device
    ) -> Verdicts:
        n, c = len(completions), len(self.rubric.criteria)
        texts = self.texts(prompts, completions)
        rows, budget = self.rows(texts), token_budget(self.cfg.max_batch_tokens, model, device)
        with judging(model, self.cfg.weights), scheduled_pass(model, self.planned_calls(model, rows, budget), device):
            logits = self.read_rows(model, texts, device, budget, rows)
        return self.verdicts(logits.view(n, c, logits.shape[-1]))

    def read_rows(
        self,
        model: torch.nn.Module,
        texts: list[str],
        device: torch.device,
        budget: int = 0,
        rows: Sequence[list[int]] | None = None,
    ) -> torch.Tensor:
        """:meth:`readout` at every text's end, ``[len(texts), F]``: packed where the model allows it, else
        one row per text (call inside :func:`judging`)."""
        if not texts:
            return torch.empty(0, 1)
        if self.shares_prefix(model):
            return self.packed_last_logits(model, texts, device, budget, rows)
        return self.last_logits(model, texts, device, budget, rows)

    def verdicts(self, logits: torch.Tensor) -> Verdicts:
        """Expected scores from next-token logits ``[N, C, V]``."""
        n, c = logits.shape[:2]
        scores = torch.full((n, c), float("nan"))
        mass = torch.zeros(n, c)
        probs: list[list[list[float]]] = [[[] for _ in range(c)] for _ in range(n)]
        if n == 0:
            return Verdicts(scores=scores, label_probs=probs, label_mass=mass)
        for j, criterion in enumerate(self.rubric.criteria):
            expected, label_probs, label_mass = expected_scores(logits[:, j, :], self.label_ids[j], criterion.values)
            scores[:, j] = expected.cpu()
            mass[:, j] = label_mass.cpu()
            for i, row in enumerate(label_probs.tolist()):
                probs[i][j] = row
        return Verdicts(scores=scores, label_probs=probs, label_mass=mass)

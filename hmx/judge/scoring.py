"""The self-judge in logprob mode: one teacher-forced forward pass, expected score (G-Eval).

For each (completion, criterion) the rubric prompt is rendered with the model's own chat
template and pre-filled up to the score (``Score: ``); the probabilities of the score labels
at the next position give the expected score. Labels must be single tokens: checked at
start-up.

Shared-prefix packing. The judge prompt quotes the prompt and completion first and the
criterion last, so the C prompts of one completion share a long token prefix. Every row is
tokenized once (one batched tokenizer call); the rows of one completion are then packed into
one sequence, ``prefix + suffix_1 + … + suffix_g``, with a 4D attention mask in which each
suffix sees the prefix and itself (never another suffix) and position ids that restart after
the prefix, so each suffix is computed exactly as in its own full row. Logits are projected
only at the g suffix ends (``logits_to_keep`` as per-row positions). The completion is thus
encoded once for all its criteria instead of C times; scores equal the one-row-per-criterion
path (:meth:`LogprobJudge.last_logits`) within float tolerance.

Call schedule (ZeRO-3 safety: every rank must make the same number of forward calls). With N
completions, C criteria and ``B = judge.batch_size``: a packed unit holds ``g = min(C, B)``
criteria of one completion, so there are ``U = N * ceil(C / g)`` units, ``max(1, B // g)``
units per forward call and ``ceil(U / max(1, B // g))`` calls. Each call scores at most B
(completion, criterion) rows. The count depends on N, C and B only, never on lengths or
content (lengths only decide which units share a call, to reduce padding). Under
``torch.distributed`` a rank that made fewer calls than another (fewer completions) pads with
one-token calls (:func:`match_calls`). Attention implementations that cannot take a custom
mask (flash-attention kernels) use the one-row-per-criterion path instead: ``ceil(N * C / B)``
calls; the choice is made from the model's config, the same on every rank.
"""

from __future__ import annotations

import contextlib
import math
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


MASKABLE_ATTENTION = ("sdpa", "eager")  # implementations that accept a custom 4D attention mask


@dataclass
class PackedUnit:
    """Some criteria of one completion packed into one sequence: ``prefix + suffix_1 + … + suffix_g``."""

    rows: list[int]  # indices of the judge rows (completion-major) scored by this unit
    tokens: list[int]
    positions: list[int]  # the position each token has in its own full row
    segments: list[int]  # 0 for the shared prefix, j + 1 for suffix j
    ends: list[int]  # index of each suffix's last token: its logits give that row's score


def shared_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Longest common token prefix of the rows, leaving at least one token to every row."""
    shortest = min(len(row) for row in rows)
    length = 0
    while length < shortest - 1 and all(row[length] == rows[0][length] for row in rows[1:]):
        length += 1
    return length


def pack_unit(row_ids: list[int], rows: Sequence[Sequence[int]]) -> PackedUnit:
    """Pack the token rows of one completion's criteria around their shared prefix."""
    prefix = shared_prefix_length(rows)
    tokens, positions, segments, ends = list(rows[0][:prefix]), list(range(prefix)), [0] * prefix, []
    for j, row in enumerate(rows):
        suffix = row[prefix:]
        tokens += suffix
        positions += range(prefix, len(row))
        segments += [j + 1] * len(suffix)
        ends.append(len(tokens) - 1)
    return PackedUnit(row_ids, tokens, positions, segments, ends)


def packed_attention_mask(
    segments: torch.Tensor, positions: torch.Tensor, sliding_window: int | None, dtype: torch.dtype
) -> torch.Tensor:
    """``[B, 1, L, L]`` additive mask (0 or the dtype's minimum) for left-padded units (segment -1 on padding).

    Causal; each suffix sees the prefix and itself. A padding query attends to itself only (a
    fully masked row would give NaN). Additive rather than boolean, so that no layer converts it.
    """
    length = segments.shape[1]
    index = torch.arange(length, device=segments.device)
    query, key = segments[:, :, None], segments[:, None, :]
    allowed = (index[None, :] <= index[:, None]) & ((key == query) | (key == 0)) & (key >= 0) & (query >= 0)
    if sliding_window is not None:
        allowed &= (positions[:, :, None] - positions[:, None, :]) < sliding_window
    allowed |= torch.eye(length, dtype=torch.bool, device=segments.device)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segments.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


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
        """One row per text: next-token logits after each, in fixed-size left-padded micro-batches."""
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

    def packed_units(self, texts: list[str], criteria: int) -> list[PackedUnit]:
        """Tokenize every row once and pack each completion's criteria, ``min(C, B)`` per unit."""
        rows = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        group = min(criteria, self.cfg.batch_size)
        units = []
        for first in range(0, len(rows), criteria):
            for start in range(first, first + criteria, group):
                ids = list(range(start, min(start + group, first + criteria)))
                units.append(pack_unit(ids, [rows[i] for i in ids]))
        return units

    def packed_last_logits(self, model: torch.nn.Module, texts: list[str], device: torch.device) -> torch.Tensor:
        """Next-token logits after each text, computed with shared-prefix packing (see the module docstring)."""
        criteria = len(self.rubric.criteria)
        units = self.packed_units(texts, criteria)
        per_call = max(1, self.cfg.batch_size // min(criteria, self.cfg.batch_size))
        order = sorted(range(len(units)), key=lambda u: len(units[u].tokens))  # less padding; same call count
        config = getattr(model, "config", None)
        sliding = getattr(config, "sliding_window", None)
        layer_types = set(getattr(config, "layer_types", None) or ())
        dtype = next(model.parameters()).dtype
        out = torch.empty(len(texts), 0)
        for start in range(0, len(order), per_call):
            batch = [units[u] for u in order[start : start + per_call]]
            length = max(len(unit.tokens) for unit in batch)
            pad_id = self.tokenizer.pad_token_id or 0
            input_ids = torch.tensor([[pad_id] * (length - len(u.tokens)) + u.tokens for u in batch])
            positions = torch.tensor([[0] * (length - len(u.tokens)) + u.positions for u in batch])
            width = max(len(u.ends) for u in batch)
            ends = torch.tensor(
                [[length - len(u.tokens) + e for e in u.ends + u.ends[-1:] * (width - len(u.ends))] for u in batch]
            )
            segments = torch.tensor([[-1] * (length - len(u.tokens)) + u.segments for u in batch], device=device)
            positions = positions.to(device)
            masks = {
                "full_attention": packed_attention_mask(segments, positions, None if layer_types else sliding, dtype)
            }
            if "sliding_attention" in layer_types and sliding is not None:
                masks["sliding_attention"] = packed_attention_mask(segments, positions, sliding, dtype)
            logits = model(
                input_ids=input_ids.to(device),
                attention_mask=masks if len(masks) > 1 else masks["full_attention"],
                position_ids=positions,
                logits_to_keep=ends.to(device),
                use_cache=False,
            ).logits.float()
            if out.shape[1] == 0:
                out = torch.empty(len(texts), logits.shape[-1], device=logits.device)
            for b, unit in enumerate(batch):
                out[unit.rows] = logits[b, : len(unit.rows)]
        return out

    def shares_prefix(self, model: torch.nn.Module) -> bool:
        """Packing needs an attention implementation that takes a custom mask (decided from config only)."""
        config = getattr(model, "config", None)
        return getattr(config, "_attn_implementation", "sdpa") in MASKABLE_ATTENTION

    def score(
        self, model: torch.nn.Module, prompts: Sequence[str], completions: Sequence[str], device: torch.device
    ) -> Verdicts:
        n, c = len(completions), len(self.rubric.criteria)
        texts = self.texts(prompts, completions)
        shares = self.shares_prefix(model)
        with judging(model, self.cfg.weights):
            if not texts:
                logits = torch.empty(0, 1)
            elif shares:
                logits = self.packed_last_logits(model, texts, device)
            else:
                logits = self.last_logits(model, texts, device)
            match_calls(model, forward_calls(n, c, self.cfg.batch_size, shares), device)
        return self.verdicts(logits.view(n, c, logits.shape[-1]))

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


def forward_calls(completions: int, criteria: int, batch_size: int, shares_prefix: bool = True) -> int:
    """The number of judge forward calls for a batch: a function of N, C and B only (ZeRO-3 safety)."""
    if not shares_prefix:
        return math.ceil(completions * criteria / batch_size)
    group = min(criteria, batch_size)
    units = completions * math.ceil(criteria / group)
    return math.ceil(units / max(1, batch_size // group))


def match_calls(model: torch.nn.Module, calls: int, device: torch.device) -> int:
    """Pad this rank's judge forward calls to the most any rank made; returns how many were added.

    TRL gives every rank the same number of completions, so the schedule alone already agrees
    (lengths never change the count); this covers a rank with fewer or none, for one all-reduce
    per judge pass. A no-op outside ``torch.distributed``.
    """
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return 0
    most = torch.tensor([calls], device=device)
    dist.all_reduce(most, op=dist.ReduceOp.MAX)
    extra = int(most.item()) - calls
    token = torch.zeros(1, 1, dtype=torch.long, device=device)
    for _ in range(extra):
        model(input_ids=token, use_cache=False, logits_to_keep=1)
    return extra

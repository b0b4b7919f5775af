"""The self-judge in generate mode: a short rationale, then ``Score: N``, parsed strictly.

The rubric prompt (same template, ``mode="generate"``) asks for a brief reason and a last
line ``Score: <label>``. The policy's own weights write the verdict greedily (deterministic,
so a drift probe or a re-score gives the same answer), with at most
``judge.generate.max_rationale_tokens + VERDICT_TOKENS`` new tokens.

Strict parsing (:func:`parse_verdict`): the judge's own ``<think>`` block is dropped; then the
last non-empty line must be exactly ``Score: <label>`` with one of the criterion's labels, and
no other line may start with ``Score:``. Anything else (no verdict, two verdicts, a label off
the scale, a rationale that ran past its budget) is unparseable: a NaN score, which the reward
functions count in ``judge/invalid`` and turn into a neutral reward (:mod:`hmx.rewards.faults`).

Only text the judge generated is parsed: the completion under judgement sits in the prompt,
quoted and defused, so a ``Score: 9`` written by the completion can never be the verdict.

With ``use_vllm`` the verdicts are generated on TRL's own vLLM engine where it can serve
them (:mod:`hmx.judge.engine.vllm_verdicts` lists the limits); otherwise with transformers.

Call schedule (ZeRO-3 safety): ``ceil(N * C / judge.batch_size)`` ``generate`` calls, a
function of N, C and B only; within a call transformers keeps every rank stepping until all
are done (``synced_gpus``, set automatically under ZeRO-3).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from hmx.config import JudgeConfig, ModeOptions
from hmx.decoding import greedy_decode
from hmx.judge.engine import vllm_verdicts
from hmx.judge.engine.prompts import JudgePrompts
from hmx.judge.protocol import JudgeBase, node_options
from hmx.judge.verdicts import Verdicts, judging
from hmx.rubrics.render import strip_thinking
from hmx.rubrics.schema import Criterion, Rubric

VERDICT_TOKENS = 8  # room for "\nScore: N" and the end-of-turn token after the rationale
_SCORE_LINE = re.compile(r"^\W*score\W*:", re.IGNORECASE)
_VERDICT = re.compile(r"Score: ?(\S+)")


@dataclass
class GeneratedVerdicts(Verdicts):
    """Verdicts plus what the judge wrote: ``rationales[i][j]`` (None when unparseable) and the raw text."""

    rationales: list[list[str | None]] = field(default_factory=list)
    raw: list[list[str]] = field(default_factory=list)


def parse_verdict(text: str, labels: Sequence[str]) -> tuple[str | None, str | None]:
    """``(label, rationale)`` from a generated verdict, or ``(None, None)`` when it does not parse strictly."""
    lines = [line.strip() for line in strip_thinking(text).splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    verdict_lines = [i for i, line in enumerate(lines) if _SCORE_LINE.match(line)]
    if verdict_lines != [len(lines) - 1]:
        return None, None
    match = _VERDICT.fullmatch(lines[-1])
    if match is None or match.group(1) not in labels:
        return None, None
    return match.group(1), "\n".join(lines[:-1]).strip()


@dataclass
class GenerateOptions(ModeOptions):
    """``judge.generate``: the written verdict (also the external judge's generate scoring)."""

    MINIMUM = {"max_rationale_tokens": 1}
    max_rationale_tokens: int = 64  # the rationale's token budget before "Score: N"


class GenerateJudge(JudgeBase):
    """Scores completions against every criterion by letting the policy write its verdict."""

    def __init__(
        self,
        rubric: Rubric,
        tokenizer: PreTrainedTokenizerBase,
        cfg: JudgeConfig,
        generation_kwargs: dict[str, Any] | None = None,
    ):
        self.options = node_options(cfg, "generate", GenerateOptions)
        self.rubric = rubric
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.generation_kwargs = generation_kwargs or {}  # e.g. a logits_processor, for tests and experiments
        self.prompts = JudgePrompts(rubric, tokenizer, cfg, "generate", "")
        self.max_new_tokens = self.options.max_rationale_tokens + VERDICT_TOKENS
        self.vllm: Any = None  # TRL's VLLMGeneration, when attach_vllm found it usable

    @property
    def special_tokens(self) -> list[str]:
        """The tokenizer's special token strings, defused inside quoted text."""
        return self.prompts.special

    def verdict_tokens(self) -> int:
        """A rationale of up to ``judge.generate.max_rationale_tokens``, then its score."""
        return self.options.max_rationale_tokens

    def attach_vllm(self, vllm_generation: Any) -> str:
        """Judge on TRL's vLLM engine where it can; returns the engine used."""
        self.vllm, reason = vllm_verdicts.usable_engine(vllm_generation, self.cfg.weights)
        if self.vllm is None and vllm_generation is not None:
            vllm_verdicts.logger.warning("hmx judge: verdicts use transformers generate, not vLLM: %s", reason)
        return "vllm" if self.vllm is not None else "transformers"

    def texts(self, prompts: Sequence[str], completions: Sequence[str]) -> list[str]:
        """Judge inputs, completion-major, ending where the judge's answer starts (no pre-fill)."""
        return self.prompts.texts(prompts, completions)

    def generate(self, model: torch.nn.Module, texts: list[str], device: torch.device) -> list[str]:
        """Greedy verdicts, ``judge.batch_size`` rows per ``generate`` call, decoded without special tokens."""
        if self.vllm is not None and self.cfg.weights == "policy":  # base weights (a frozen judge) stay here
            ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
            verdicts = vllm_verdicts.vllm_verdict_ids(self.vllm, ids, self.max_new_tokens)
            return self.tokenizer.batch_decode(verdicts, skip_special_tokens=True)
        return greedy_decode(
            model,
            self.tokenizer,
            texts,
            batch_size=self.cfg.batch_size,
            max_new_tokens=self.max_new_tokens,
            device=device,
            desc="judge: generate",
            **self.generation_kwargs,
        )

    def score(
        self, model: torch.nn.Module, prompts: Sequence[str], completions: Sequence[str], device: torch.device
    ) -> GeneratedVerdicts:
        n, c = len(completions), len(self.rubric.criteria)
        texts = self.texts(prompts, completions)
        with judging(model, self.cfg.weights):
            raw = self.generate(model, texts, device) if texts or self.vllm is not None else []  # vLLM: collective
        return self.verdicts([raw[i * c : (i + 1) * c] for i in range(n)])

    def verdicts(self, raw: list[list[str]]) -> GeneratedVerdicts:
        """Parsed verdicts from raw judge text ``[N][C]``: the label's value, one-hot label probabilities."""
        n, c = len(raw), len(self.rubric.criteria)
        scores = torch.full((n, c), float("nan"))
        mass = torch.zeros(n, c)
        probs: list[list[list[float]]] = [[[] for _ in range(c)] for _ in range(n)]
        rationales: list[list[str | None]] = [[None] * c for _ in range(n)]
        for i, row in enumerate(raw):
            for j, (text, criterion) in enumerate(zip(row, self.rubric.criteria, strict=True)):
                label, rationale = parse_verdict(text, criterion.labels)
                probs[i][j] = _one_hot(criterion, label)
                if label is not None:
                    scores[i, j] = criterion.values[criterion.labels.index(label)]
                    mass[i, j] = 1.0
                    rationales[i][j] = rationale
        return GeneratedVerdicts(scores=scores, label_probs=probs, label_mass=mass, rationales=rationales, raw=raw)


def _one_hot(criterion: Criterion, label: str | None) -> list[float]:
    return [1.0 if level == label else 0.0 for level in criterion.labels]

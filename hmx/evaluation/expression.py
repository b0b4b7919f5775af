"""Expression score: the rubric judge grades the model's answers to the held-out prompts.

The model answers each prompt of the data's eval split (chat template, greedy decoding), then
the logprob judge (the same one that rewards training) scores every answer on every criterion:
with the evaluated model's own weights (``self``: adapter on; ``endpoint`` when the run's judge is
``judge.source=external``, the OpenAI-compatible endpoint) and, when the suite names one,
with an external judge model (``external``). ``suite.expression.judge`` adds the instrument
(``instrument``: a judge independent of the reward, with the adapter off or on its own model;
hmx/evaluation/instrument.py records what it shares with the reward). Scores are raw expected
scores on the rubric's scale (never flipped: a reverse run is judged by the forward rubric).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from hmx.chat_template import user_prompt
from hmx.config import DataConfig, JudgeConfig
from hmx.data import load_prompts
from hmx.decoding import greedy_decode
from hmx.evaluation.instrument import INSTRUMENT, instrument_config
from hmx.evaluation.suite import ExpressionConfig
from hmx.judge.protocol import Judge
from hmx.judge.registry import build_judge, scoring_config
from hmx.models import load_model, load_tokenizer
from hmx.rubrics.schema import Rubric


@dataclass
class ExpressionResults:
    metrics: dict[str, float]  # "<judge>/<criterion>" and "<judge>/overall" (weighted by the rubric)
    records: list[dict]  # prompt, answer and every judge's scores


def eval_prompts(data: DataConfig, limit: int | None) -> list[str]:
    """The user messages of the data's held-out split."""
    split = data.eval_split or data.train_split
    rows = load_prompts(replace(data, max_samples=limit), split=split)
    return [row["prompt"][-1]["content"] for row in rows]


def generate_answers(
    model: Any, tokenizer: PreTrainedTokenizerBase, prompts: list[str], cfg: ExpressionConfig
) -> list[str]:
    """Greedy answers in the model's chat template, in left-padded batches."""
    texts = [user_prompt(tokenizer, p) for p in prompts]
    return greedy_decode(
        model,
        tokenizer,
        texts,
        batch_size=cfg.batch_size,
        max_new_tokens=cfg.max_new_tokens,
        device=model.device,
        desc="expression: answering",
    )


def judge_scores(
    judge: Judge, model: torch.nn.Module, prompts: list[str], answers: list[str], device: torch.device
) -> torch.Tensor:
    """Expected score per answer and criterion ``[N, C]``, judged in fixed-size batches."""
    step = max(1, judge.cfg.batch_size // max(1, len(judge.rubric.criteria)))
    chunks = []
    for start in tqdm(range(0, len(prompts), step), desc="expression: judging", unit="batch"):
        verdicts = judge.score(model, prompts[start : start + step], answers[start : start + step], device)
        chunks.append(verdicts.scores)
    return torch.cat(chunks) if chunks else torch.empty(0, len(judge.rubric.criteria))


def summarise(rubric: Rubric, scores: torch.Tensor) -> dict[str, float]:
    """Mean score per criterion (over finite scores) and the rubric-weighted overall mean."""
    metrics: dict[str, float] = {}
    for j, criterion in enumerate(rubric.criteria):
        column = scores[:, j]
        finite = column[torch.isfinite(column)]
        metrics[criterion.name] = float(finite.mean()) if len(finite) else math.nan
    weighted = [(c.weight, metrics[c.name]) for c in rubric.criteria if not c.guard and math.isfinite(metrics[c.name])]
    total = sum(w for w, _ in weighted)
    metrics["overall"] = sum(w * v for w, v in weighted) / total if total else math.nan
    return metrics


def load_instrument(
    cfg: ExpressionConfig, rubric: Rubric, model: Any, tokenizer: PreTrainedTokenizerBase, cache_dir: str
) -> tuple[Judge, Any]:
    """The instrument's judge and the model it reads (the evaluated model, whose adapter it turns off, or its own)."""
    assert cfg.judge is not None
    if cfg.judge_model is not None:
        tokenizer = load_tokenizer(cfg.judge_model, cache_dir)
        model = load_model(cfg.judge_model, cache_dir).to(model.device).eval()
    judge = build_judge(rubric, tokenizer, instrument_config(cfg.judge))
    judge.check_model(model)  # a probe head fitted on another model's shape fails here (a no-op for other modes)
    return judge, model


def score_with_instrument(
    cfg: ExpressionConfig,
    rubric: Rubric,
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    answers: list[str],
    cache_dir: str,
) -> torch.Tensor:
    judge, judge_model = load_instrument(cfg, rubric, model, tokenizer, cache_dir)
    return judge_scores(judge, judge_model, prompts, answers, model.device)


def run_expression(
    model: Any,  # a causal LM: transformers or peft
    tokenizer: PreTrainedTokenizerBase,
    rubric: Rubric,
    judge_cfg: JudgeConfig,
    data: DataConfig,
    cfg: ExpressionConfig,
    cache_dir: str,
) -> ExpressionResults:
    prompts = eval_prompts(data, cfg.limit)
    answers = generate_answers(model, tokenizer, prompts, cfg)
    # the run's judge mode, except generate (a rationale per answer): its logprob form scores the same rubric
    judge_cfg = scoring_config(replace(judge_cfg, weights="policy"))
    self_judge = build_judge(rubric, tokenizer, judge_cfg)
    judge_name = "self" if judge_cfg.source == "self" else "endpoint"  # judge.source=external: the endpoint judged
    judged = {judge_name: judge_scores(self_judge, model, prompts, answers, model.device)}
    if cfg.external_judge is not None:
        external_tokenizer = load_tokenizer(cfg.external_judge, cache_dir)
        external_judge = build_judge(rubric, external_tokenizer, judge_cfg)
        external_model: torch.nn.Module = load_model(cfg.external_judge, cache_dir)
        external_model.to(model.device).eval()
        judged["external"] = judge_scores(external_judge, external_model, prompts, answers, model.device)
        del external_model
    if cfg.judge is not None:
        judged[INSTRUMENT] = score_with_instrument(cfg, rubric, model, tokenizer, prompts, answers, cache_dir)
    metrics = {
        f"{name}/{key}": value for name, scores in judged.items() for key, value in summarise(rubric, scores).items()
    }
    records = [
        {
            "prompt": prompt,
            "answer": answer,
            **{
                f"{name}/{key}": value
                for name, scores in judged.items()
                for key, value in summarise(rubric, scores[i : i + 1]).items()
            },
        }
        for i, (prompt, answer) in enumerate(zip(prompts, answers, strict=True))
    ]  # each answer's scores per criterion and its rubric-weighted overall (the metrics on one item)
    return ExpressionResults(metrics=metrics, records=records)

"""An external judge: an OpenAI-compatible endpoint scores the completions (``judge.source=external``).

Any server that speaks the Chat Completions API will do: vLLM (``vllm serve``), ``trl vllm-serve``'s
OpenAI route, ``transformers serve``, llama.cpp's server. Each (completion, criterion) row is one
request whose user message is the rubric prompt the self-judge renders (same sandboxed template,
the completion quoted and defused); the server applies its own chat template.

Scoring (``judge.external.scoring``):

- ``logprobs``: ``max_tokens=1`` and ``top_logprobs=K``; the probabilities of the tokens that spell a
  score label (surrounding whitespace ignored) give the expected score over the labels, as the
  self-judge's logprob mode does (G-Eval). No label among the K alternatives: a fault.
- ``generate``: a short rationale then ``Score: N``, parsed as strictly as the self-judge's
  generate mode (:func:`hmx.judge.modes.generate.parse_verdict`).
- ``auto`` (default): the first request asks for logprobs; a server that returns none (``transformers
  serve`` ignores the field) is judged in generate mode for the rest of the run, said once in the log.

Requests run ``judge.external.concurrency`` at a time (a thread pool over one ``httpx.Client``),
each with ``judge.external.timeout`` seconds; a timeout, a connection error, a 429 or a 5xx is
retried ``judge.external.retries`` times with exponential backoff. Whatever still fails (or a
reply that does not parse) is a NaN score: a neutral reward (:mod:`hmx.rewards.faults`), counted in
``judge/invalid`` and ``judge/external/*``, never a crashed run.

No forward pass of the policy is made, so the self-judge's fixed call schedule (ZeRO-3) does not
apply: every rank sends its own rows. The API key is read from the environment variable that
``judge.external.api_key_env`` names; the key itself is never in a config, a log or an output.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import torch
from transformers import PreTrainedTokenizerBase

from hmx.config import ConfigError, ExternalJudgeConfig, JudgeConfig
from hmx.judge.engine.prompts import special_tokens
from hmx.judge.modes.generate import VERDICT_TOKENS, parse_verdict
from hmx.judge.protocol import JudgeBase
from hmx.judge.verdicts import Verdicts
from hmx.rubrics.render import render_judge_message
from hmx.rubrics.schema import Criterion, Rubric

logger = logging.getLogger(__name__)

SCORINGS = ("auto", "logprobs", "generate")
RETRIED_STATUS = {408, 409, 429, 500, 502, 503, 504}


def check_external(cfg: ExternalJudgeConfig) -> str | None:
    """Validate ``judge.external``; returns the API key (None when no key is configured)."""
    where = "config field 'judge.external"
    if not cfg.base_url:
        raise ConfigError(
            f"{where}.base_url': required with judge.source=external or judge.panel=true "
            "(e.g. http://127.0.0.1:8000/v1)"
        )
    if not cfg.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}.base_url': must start with http:// or https://, got {cfg.base_url!r}")
    if not cfg.model:
        raise ConfigError(f"{where}.model': required with judge.source=external (the served model's name)")
    if cfg.scoring not in SCORINGS:
        raise ConfigError(f"{where}.scoring': must be one of {SCORINGS}, got {cfg.scoring!r}")
    for name, floor in (("concurrency", 1), ("top_logprobs", 1), ("retries", 0)):
        if getattr(cfg, name) < floor:
            raise ConfigError(f"{where}.{name}': must be >= {floor}, got {getattr(cfg, name)}")
    if not cfg.timeout > 0:
        raise ConfigError(f"{where}.timeout': must be > 0 seconds, got {cfg.timeout}")
    if not cfg.backoff >= 0:
        raise ConfigError(f"{where}.backoff': must be >= 0 seconds, got {cfg.backoff}")
    if cfg.api_key_env is None:
        return None
    key = os.environ.get(cfg.api_key_env)
    if not key:
        raise ConfigError(
            f"{where}.api_key_env': the environment variable {cfg.api_key_env!r} is not set "
            "(export it, or set judge.external.api_key_env=null for a server without a key)"
        )
    return key


def check_reachable(cfg: ExternalJudgeConfig) -> None:
    """Fail at start-up when nothing answers at ``judge.external.base_url`` (any HTTP status is an answer).

    During training a failed request is a neutral reward; before it, an unreachable server is almost
    always a wrong URL or a server not started yet, and a run of neutral rewards would hide it.
    """
    url = str(cfg.base_url).rstrip("/") + "/models"
    try:
        httpx.get(url, timeout=min(cfg.timeout, 10.0))
    except httpx.HTTPError as err:
        raise ConfigError(
            f"config field 'judge.external.base_url': nothing answers at {cfg.base_url} ({type(err).__name__}); "
            "start the server first (e.g. `vllm serve MODEL --port 8000`) or correct the URL"
        ) from None


def label_distribution(top_logprobs: Sequence[dict[str, Any]], labels: Sequence[str]) -> tuple[list[float], float]:
    """Probability of each label among a position's alternatives (summed over spellings), and their total."""
    probs = [0.0] * len(labels)
    for alternative in top_logprobs:
        if not isinstance(alternative, dict):
            continue
        token, logprob = str(alternative.get("token", "")).strip(), alternative.get("logprob")
        if token in labels and isinstance(logprob, (int, float)) and math.isfinite(logprob):
            probs[labels.index(token)] += math.exp(logprob)
    return probs, sum(probs)


def first_top_logprobs(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The alternatives at the first generated token of a chat completion, or None when the server sent none."""
    try:
        content = body["choices"][0]["logprobs"]["content"]
        top = content[0]["top_logprobs"]
    except (KeyError, IndexError, TypeError):
        return None
    return top if isinstance(top, list) and top else None


def reply_text(body: dict[str, Any]) -> str | None:
    try:
        text = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return text if isinstance(text, str) else None


@dataclass
class RowVerdict:
    """One (completion, criterion) verdict: score NaN on a fault."""

    score: float = math.nan
    probs: list[float] | None = None
    mass: float = 0.0
    failed: bool = False  # no usable HTTP answer after the retries
    retries: int = 0
    text: str | None = None  # generate scoring: what the server wrote


class ExternalJudge(JudgeBase):
    """Scores completions against every criterion of a rubric with an OpenAI-compatible endpoint."""

    def __init__(self, rubric: Rubric, tokenizer: PreTrainedTokenizerBase, cfg: JudgeConfig):
        self.rubric, self.cfg = rubric, cfg
        key = check_external(cfg.external)
        self.special = special_tokens(tokenizer)  # defused inside quoted text, as for the self-judge
        self.scoring = cfg.external.scoring  # "auto" until the first answer says whether logprobs come back
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(
            base_url=cfg.external.base_url.rstrip("/") + "/",  # type: ignore[union-attr]
            headers=headers,
            timeout=cfg.external.timeout,
            limits=httpx.Limits(max_connections=cfg.external.concurrency),
        )
        self.last_metrics: dict[str, float] = {}  # judge/external/* of the last batch (logged with it)
        self.raw: list[list[str | None]] = []  # generate scoring: the last batch's replies [N][C]

    def __repr__(self) -> str:  # never the headers: they hold the key
        return f"ExternalJudge({self.cfg.external.base_url!r}, model={self.cfg.external.model!r})"

    def texts(self, prompts: Sequence[str], completions: Sequence[str]) -> list[str]:
        """Inputs in the policy's context: none (the endpoint's context is the server's concern)."""
        return []

    def message(self, prompt: str, completion: str, criterion: Criterion, scoring: str) -> str:
        cfg = self.cfg
        return render_judge_message(
            self.rubric,
            criterion,
            prompt[: cfg.max_prompt_chars],
            completion[: cfg.max_completion_chars],
            self.special,
            mode="generate" if scoring == "generate" else "logprob",
        )

    def request(self, message: str, scoring: str) -> tuple[dict[str, Any] | None, int]:
        """POST one chat completion, retried with backoff; (the JSON answer or None, retries made)."""
        ext = self.cfg.external
        body: dict[str, Any] = {
            **ext.extra_body,  # e.g. {"chat_template_kwargs": {"enable_thinking": false}} for a thinking model
            "model": ext.model,
            "messages": [{"role": "user", "content": message}],
            "temperature": 0.0,
        }
        if scoring == "generate":
            body["max_tokens"] = self.cfg.max_rationale_tokens + VERDICT_TOKENS
        else:
            body.update(max_tokens=1, logprobs=True, top_logprobs=ext.top_logprobs)
        for attempt in range(ext.retries + 1):
            if attempt:
                time.sleep(ext.backoff * 2 ** (attempt - 1))
            try:
                response = self.client.post("chat/completions", json=body)
            except httpx.HTTPError as err:  # timeouts, refused connections, broken streams
                logger.debug("external judge: %s (try %d)", type(err).__name__, attempt + 1)
                continue
            if response.status_code in RETRIED_STATUS:
                continue
            if response.status_code >= 400:
                logger.warning("external judge: HTTP %d: %s", response.status_code, response.text[:200])
                return None, attempt
            try:
                answer = response.json()
            except ValueError:
                continue
            return (answer if isinstance(answer, dict) else None), attempt
        return None, ext.retries

    def row(self, prompt: str, completion: str, criterion: Criterion, scoring: str) -> RowVerdict:
        answer, retries = self.request(self.message(prompt, completion, criterion, scoring), scoring)
        if answer is None:
            return RowVerdict(failed=True, retries=retries)
        if scoring == "generate":
            text = reply_text(answer)
            label, _ = parse_verdict(text or "", criterion.labels)
            verdict = RowVerdict(retries=retries, text=text, probs=[float(lv == label) for lv in criterion.labels])
            if label is not None:
                verdict.score, verdict.mass = criterion.values[criterion.labels.index(label)], 1.0
            return verdict
        top = first_top_logprobs(answer)
        probs, mass = label_distribution(top or [], criterion.labels)
        verdict = RowVerdict(retries=retries, mass=mass, probs=[p / mass if mass else 0.0 for p in probs])
        if mass > 0:
            verdict.score = sum(p * v for p, v in zip(verdict.probs or [], criterion.values, strict=True))
        return verdict

    def safe_row(self, prompt: str, completion: str, criterion: Criterion, scoring: str) -> RowVerdict:
        """:meth:`row`, with anything unforeseen (a malformed answer) a failed row instead of a crashed run."""
        try:
            return self.row(prompt, completion, criterion, scoring)
        except Exception as err:  # a judge fault must never stop training
            logger.warning("external judge: %s: %s", type(err).__name__, err)
            return RowVerdict(failed=True)

    def resolve_scoring(self, prompt: str, completion: str) -> None:
        """``auto``: one logprob request decides whether the server returns logprobs (kept for the run)."""
        message = self.message(prompt, completion, self.rubric.criteria[0], "logprobs")
        answer, _ = self.request(message, "logprobs")
        if answer is None:
            return  # undecided: this batch is sent as logprob requests, and the next batch asks again
        self.scoring = "logprobs" if first_top_logprobs(answer) is not None else "generate"
        if self.scoring == "generate":
            logger.warning("hmx judge: %s returned no logprobs; the external judge uses generate mode", self)

    def score(
        self, model: torch.nn.Module, prompts: Sequence[str], completions: Sequence[str], device: torch.device
    ) -> Verdicts:
        """Verdicts [N, C]; ``model`` and ``device`` are unused (the endpoint judges)."""
        start = time.perf_counter()
        n, c = len(completions), len(self.rubric.criteria)
        if self.scoring == "auto" and n:
            self.resolve_scoring(prompts[0], completions[0])
        scoring = "logprobs" if self.scoring == "auto" else self.scoring
        jobs = [
            (p, comp, criterion)
            for p, comp in zip(prompts, completions, strict=True)
            for criterion in self.rubric.criteria
        ]
        workers = max(1, min(self.cfg.external.concurrency, len(jobs)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hmx-judge") as pool:
            rows = list(pool.map(lambda job: self.safe_row(job[0], job[1], job[2], scoring), jobs))
        scores = torch.tensor([r.score for r in rows], dtype=torch.float32).view(n, c)
        mass = torch.tensor([r.mass for r in rows], dtype=torch.float32).view(n, c)
        probs = [[rows[i * c + j].probs or [] for j in range(c)] for i in range(n)]
        self.raw = [[rows[i * c + j].text for j in range(c)] for i in range(n)]
        self.last_metrics = {
            "judge/external/failed": float(sum(r.failed for r in rows)),
            "judge/external/unparsed": float(sum(not r.failed and not math.isfinite(r.score) for r in rows)),
            "judge/external/retries": float(sum(r.retries for r in rows)),
            "judge/external/logprobs": float(scoring == "logprobs"),
            "judge/external/seconds": time.perf_counter() - start,
        }
        return Verdicts(scores=scores, label_probs=probs, label_mass=mass)

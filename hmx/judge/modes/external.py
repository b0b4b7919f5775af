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

Requests run ``judge.external.concurrency`` at a time (a thread pool over one connection pool).
Every request and every parse goes through one guarded boundary (:mod:`hmx.judge.modes.endpoint`):
``judge.external.timeout`` is a deadline for the whole request, a reply over
``judge.external.max_reply_bytes`` is cut off there, and nothing a server sends raises. A timeout,
a connection error, a 429 or a 5xx is retried ``judge.external.retries`` times with exponential
backoff. Whatever still fails, an oversize reply, a reply that does not parse, and a label
distribution that is not one (a positive or non-finite logprob, a score outside the scale) is a NaN
score: a neutral reward (:mod:`hmx.rewards.faults`), counted in ``judge/invalid`` and
``judge/external/*``, never a crashed run. The label probabilities are normalised in log space.

No forward pass of the policy is made, so the self-judge's fixed call schedule (ZeRO-3) does not
apply: every rank sends its own rows. The API key is read from the environment variable that
``judge.external.api_key_env`` names; the key itself is never in a config, a log or an output
(:mod:`hmx.redaction`: a server's reply that echoes it is redacted before it is logged).
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
from scipy.special import logsumexp
from transformers import PreTrainedTokenizerBase

from hmx.config import ConfigError, ExternalJudgeConfig, JudgeConfig
from hmx.judge.engine.prompts import special_tokens
from hmx.judge.modes.endpoint import Endpoint, Exchange
from hmx.judge.modes.generate import VERDICT_TOKENS, GenerateOptions, parse_verdict
from hmx.judge.protocol import JudgeBase, node_options
from hmx.judge.verdicts import Verdicts
from hmx.redaction import protect_env, redact_text
from hmx.rubrics.render import render_judge_message
from hmx.rubrics.schema import Criterion, Rubric

logger = logging.getLogger(__name__)

SCORINGS = ("auto", "logprobs", "generate")
RETRIED_STATUS = {408, 409, 429, 500, 502, 503, 504}
RETRIED_FAULTS = {"timeout", "connection"}
LOGPROB_SLACK = 1e-4  # a logprob or a label mass above log(1) by more than rounding: not a distribution
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
    for name, floor in (("concurrency", 1), ("top_logprobs", 1), ("retries", 0), ("max_reply_bytes", 1)):
        if getattr(cfg, name) < floor:
            raise ConfigError(f"{where}.{name}': must be >= {floor}, got {getattr(cfg, name)}")
    if not (cfg.timeout > 0 and math.isfinite(cfg.timeout)):
        raise ConfigError(f"{where}.timeout': must be a finite number > 0 seconds, got {cfg.timeout}")
    if not (cfg.backoff >= 0 and math.isfinite(cfg.backoff)):
        raise ConfigError(f"{where}.backoff': must be a finite number >= 0 seconds, got {cfg.backoff}")
    if cfg.api_key_env is None:
        return None
    if not ENV_NAME.fullmatch(cfg.api_key_env):  # never echoed: it may be the key itself
        raise ConfigError(
            f"{where}.api_key_env': must be the NAME of an environment variable (letters, digits, _), "
            "not the key itself; the value given is not shown (export JUDGE_API_KEY=<key>, then set "
            "judge.external.api_key_env=JUDGE_API_KEY)"
        )
    protect_env(cfg.api_key_env)  # its value is redacted from everything hmx prints or writes
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
    endpoint = Endpoint(str(cfg.base_url), None, min(cfg.timeout, 10.0), cfg.max_reply_bytes, 1)
    try:
        exchange = endpoint.get("models")
    finally:
        endpoint.close()
    if exchange.fault in RETRIED_FAULTS:
        raise ConfigError(
            f"config field 'judge.external.base_url': nothing answers at {cfg.base_url} ({exchange.fault}: "
            f"{exchange.error}); start the server first (e.g. `vllm serve MODEL --port 8000`) or correct the URL"
        )


def label_distribution(
    top_logprobs: Sequence[dict[str, Any]], labels: Sequence[str]
) -> tuple[list[float], float] | None:
    """Each label's probability among a position's alternatives, normalised over the labels (spellings
    summed), and the labels' total probability; None when the alternatives are not a distribution.

    In log space throughout (scipy's ``logsumexp``): logprobs of 709 or -800 neither overflow nor vanish.
    A logprob above 0 (a probability over 1), NaN or +inf, or a label mass over 1, is not a distribution.
    """
    per_label: list[list[float]] = [[] for _ in labels]
    for alternative in top_logprobs:
        if not isinstance(alternative, dict):
            continue
        logprob = alternative.get("logprob")
        if not isinstance(logprob, (int, float)) or isinstance(logprob, bool):
            continue
        if math.isnan(logprob) or logprob > LOGPROB_SLACK:
            return None
        token = str(alternative.get("token", "")).strip()
        if token in labels and logprob > -math.inf:
            per_label[labels.index(token)].append(float(logprob))
    label_logprobs = [float(logsumexp(lps)) if lps else -math.inf for lps in per_label]
    if all(lp == -math.inf for lp in label_logprobs):
        return [0.0] * len(labels), 0.0
    total = float(logsumexp(label_logprobs))
    if not total <= LOGPROB_SLACK:
        return None
    return [math.exp(lp - total) for lp in label_logprobs], math.exp(min(total, 0.0))


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
    failed: bool = False  # no usable HTTP answer after the retries (timeout, connection, oversize, 4xx)
    oversize: bool = False  # the reply passed judge.external.max_reply_bytes
    retries: int = 0
    text: str | None = None  # generate scoring: what the server wrote


class ExternalJudge(JudgeBase):
    """Scores completions against every criterion of a rubric with an OpenAI-compatible endpoint."""

    def __init__(self, rubric: Rubric, tokenizer: PreTrainedTokenizerBase, cfg: JudgeConfig):
        self.rubric, self.cfg = rubric, cfg
        self.rationale = node_options(cfg, "generate", GenerateOptions)  # its generate scoring's budget
        key = check_external(cfg.external)
        self.special = special_tokens(tokenizer)  # defused inside quoted text, as for the self-judge
        self.scoring = cfg.external.scoring  # "auto" until the first answer says whether logprobs come back
        ext = cfg.external
        self.endpoint = Endpoint(str(ext.base_url), key, ext.timeout, ext.max_reply_bytes, ext.concurrency)
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

    def request(self, message: str, scoring: str) -> tuple[Exchange, int]:
        """POST one chat completion, retried with backoff; (the last exchange, retries made). Never raises."""
        ext = self.cfg.external
        body: dict[str, Any] = {
            **ext.extra_body,  # e.g. {"chat_template_kwargs": {"enable_thinking": false}} for a thinking model
            "model": ext.model,
            "messages": [{"role": "user", "content": message}],
            "temperature": 0.0,
        }
        if scoring == "generate":
            body["max_tokens"] = self.rationale.max_rationale_tokens + VERDICT_TOKENS
        else:
            body.update(max_tokens=1, logprobs=True, top_logprobs=ext.top_logprobs)
        exchange = Exchange(fault="connection")
        for attempt in range(ext.retries + 1):
            if attempt:
                time.sleep(ext.backoff * 2 ** (attempt - 1))
            exchange = self.endpoint.post_json("chat/completions", body)
            if exchange.fault in RETRIED_FAULTS or exchange.status in RETRIED_STATUS:
                logger.debug("external judge: %s %s (try %d)", exchange.fault, exchange.error, attempt + 1)
                continue
            if exchange.fault == "oversize":
                logger.warning("external judge: %s", exchange.error)
            elif exchange.status is not None and exchange.status >= 400:  # redacted before it is cut short
                logger.warning("external judge: HTTP %d: %s", exchange.status, redact_text(exchange.text)[:200])
            return exchange, attempt
        return exchange, ext.retries

    def row(self, prompt: str, completion: str, criterion: Criterion, scoring: str) -> RowVerdict:
        exchange, retries = self.request(self.message(prompt, completion, criterion, scoring), scoring)
        answer = exchange.answer
        if exchange.fault in (*RETRIED_FAULTS, "oversize") or (exchange.status or 0) >= 400:
            return RowVerdict(failed=True, oversize=exchange.fault == "oversize", retries=retries)
        if answer is None:  # an answer that does not parse: unparsed
            return RowVerdict(retries=retries)
        if scoring == "generate":
            text = reply_text(answer)
            label, _ = parse_verdict(text or "", criterion.labels)
            verdict = RowVerdict(retries=retries, text=text, probs=[float(lv == label) for lv in criterion.labels])
            if label is not None:
                verdict.score, verdict.mass = criterion.values[criterion.labels.index(label)], 1.0
            return verdict
        distribution = label_distribution(first_top_logprobs(answer) or [], criterion.labels)
        if distribution is None:  # not a distribution: invalid
            return RowVerdict(retries=retries)
        probs, mass = distribution
        verdict = RowVerdict(retries=retries, mass=mass, probs=probs)
        if any(p > 0 for p in probs):  # a label among the alternatives (its mass may underflow to 0)
            score = math.fsum(p * v for p, v in zip(probs, criterion.values, strict=True))
            if math.isfinite(score) and min(criterion.values) <= score <= max(criterion.values):
                verdict.score = score
            else:  # out of the scale: invalid, never a penalty
                verdict.mass, verdict.probs = 0.0, None
        return verdict

    def safe_row(self, prompt: str, completion: str, criterion: Criterion, scoring: str) -> RowVerdict:
        """:meth:`row`, with anything unforeseen (a malformed answer) a failed row instead of a crashed run."""
        try:
            return self.row(prompt, completion, criterion, scoring)
        except Exception as err:  # a judge fault must never stop training
            logger.warning("external judge: %s: %s", type(err).__name__, redact_text(str(err))[:200])
            return RowVerdict(failed=True)

    def resolve_scoring(self, prompt: str, completion: str) -> None:
        """``auto``: one logprob request decides whether the server returns logprobs (kept for the run)."""
        try:  # a judge fault must never stop training: this first request is guarded like every row
            message = self.message(prompt, completion, self.rubric.criteria[0], "logprobs")
            exchange = self.request(message, "logprobs")[0]
            answer = exchange.answer
            if answer is None or (exchange.status or 0) >= 400:
                return  # undecided: this batch is sent as logprob requests, and the next batch asks again
            self.scoring = "logprobs" if first_top_logprobs(answer) is not None else "generate"
        except Exception as err:
            logger.warning("external judge: %s: %s", type(err).__name__, redact_text(str(err))[:200])
            return
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
            "judge/external/oversize": float(sum(r.oversize for r in rows)),
            "judge/external/unparsed": float(sum(not r.failed and not math.isfinite(r.score) for r in rows)),
            "judge/external/retries": float(sum(r.retries for r in rows)),
            "judge/external/logprobs": float(scoring == "logprobs"),
            "judge/external/seconds": time.perf_counter() - start,
        }
        return Verdicts(scores=scores, label_probs=probs, label_mass=mass)

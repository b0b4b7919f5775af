"""Evaluation fine-tuning (Self-Rewarding LMs, Yuan et al. 2024): teach the model to judge through the rubric prompt.

A LoRA adapter (peft) on the judge's own weights is trained with a Bradley-Terry loss on the logprob
judge's expected scores: for a labelled pair on criterion c, ``-log sigmoid(beta * (E_c(chosen) -
E_c(rejected)))``, where ``E_c`` is the expected score over the rubric's labels read from the next-token
logits after the pre-filled judge prompt (:func:`hmx.judge.modes.logprob.expected_scores`). The logits
come from :meth:`LogprobJudge.read_rows`, the very path that scores at inference (shared-prefix packing,
the rubric prefix encoded once per step), run with gradients on: what is trained is what judges.

A plain torch loop over the peft model, not TRL's ``RewardTrainer``: that trainer fits a scalar head of a
sequence-classification model on (chosen, rejected) sequences, while this loss needs both replies'
expected scores read from the language-model head's label logits under one rubric prompt per criterion.

Held-out selection: the pairs are split by message (every pair of a prompt on one side) into a fit part
and a held-out part, or the held-out pairs are given apart (e.g. a split written by other authors); after
each epoch the judge is scored on the held-out pairs and the best epoch's adapter is kept (epoch 0, the
untuned judge, included): choices are made on dev, never on test.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
from tqdm.auto import tqdm

from hmx.config import JudgeConfig
from hmx.judge.modes.logprob import LogprobJudge, expected_scores
from hmx.judge.validity.accuracy import TIE
from hmx.judge.verdicts import judging
from hmx.rubrics.pairs import LabelledPair
from hmx.rubrics.schema import Rubric


@dataclass
class TuneSettings:
    """What tune-judge trains. The defaults were set for CPU time (minutes for SmolLM2-135M), not searched;
    the held-out messages pick the epoch (docs/rubrics.md)."""

    epochs: int = 2
    lr: float = 5e-3
    pairs_per_step: int = 8
    beta: float = 1.0  # Bradley-Terry temperature on the expected-score gap (scale units)
    r: int = 8
    lora_alpha: int = 16
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    last_layers: int = 4  # LoRA on the last N decoder layers only (0: every layer); fewer: a cheaper backward
    heldout: float = 0.2  # share of the messages held out to pick the epoch (0: no selection, last epoch)
    seed: int = 0

    def lora(self, depth: int) -> dict[str, Any]:
        """The ``peft.LoraConfig`` fields (also written into the adapter file)."""
        layers = list(range(depth - self.last_layers, depth)) if 0 < self.last_layers < depth else None
        return {
            "r": self.r,
            "lora_alpha": self.lora_alpha,
            "target_modules": list(self.target_modules),
            "layers_to_transform": layers,
            "lora_dropout": 0.0,
            "bias": "none",
        }


@dataclass
class TuneResult:
    tensors: dict[str, torch.Tensor]  # the kept epoch's LoRA state dict (peft's keys)
    lora: dict[str, Any]
    history: list[dict[str, float]]  # per epoch: fit loss, fit and held-out accuracy (epoch 0: untuned);
    # "collapsed": 1.0 on an epoch where every fit pair tied (the run stops there)
    best_epoch: int
    fit_pairs: int
    heldout_pairs: int
    seconds: float


def split_by_message(pairs: Sequence[LabelledPair], heldout: float) -> tuple[list[LabelledPair], list[LabelledPair]]:
    """(fit, held-out): a prompt's pairs all on one side, chosen by a hash of the prompt (reproducible)."""
    if heldout <= 0:
        return list(pairs), []
    prompts = sorted({p.prompt for p in pairs}, key=lambda s: hashlib.sha256(s.encode("utf-8")).hexdigest())
    held = set(prompts[: max(1, round(heldout * len(prompts)))]) if len(prompts) > 1 else set()
    return [p for p in pairs if p.prompt not in held], [p for p in pairs if p.prompt in held]


def pair_scores(
    judge: LogprobJudge, model: torch.nn.Module, pairs: Sequence[LabelledPair], device: torch.device
) -> torch.Tensor:
    """``[len(pairs), 2]`` expected scores (chosen, rejected) on each pair's criterion, differentiable
    when gradients are on: one judge pass over both replies of every pair (all criteria packed)."""
    texts = judge.texts([p.prompt for p in pairs for _ in (0, 1)], [t for p in pairs for t in (p.chosen, p.rejected)])
    logits = judge.read_rows(model, texts, device)
    names = [c.name for c in judge.rubric.criteria]
    count = len(names)
    rows = []
    for i, pair in enumerate(pairs):
        j = names.index(pair.criterion)
        chosen_rejected = logits[[(2 * i) * count + j, (2 * i + 1) * count + j]]
        criterion = judge.rubric.criteria[j]
        rows.append(expected_scores(chosen_rejected, judge.label_ids[j], criterion.values)[0])
    return torch.stack(rows)


def collapsed(scores: torch.Tensor) -> bool:
    """Every pair a tie: the judge gives both replies the same expected score, so the Bradley-Terry loss is
    ln 2 with no gradient left to move it (a label distribution saturated on one label)."""
    return bool(len(scores)) and bool(((scores[:, 0] - scores[:, 1]).abs() <= TIE).all())


def bt_loss(scores: torch.Tensor, beta: float) -> torch.Tensor:
    """Bradley-Terry: ``-log sigmoid(beta * (chosen - rejected))``, averaged over pairs."""
    return -torch.nn.functional.logsigmoid(beta * (scores[:, 0] - scores[:, 1])).mean()


def pair_accuracy(scores: torch.Tensor) -> float:
    """Share of pairs ranked right, a tie counting half (as ``hmx rubric validate`` counts)."""
    if len(scores) == 0:
        return float("nan")
    gap = scores[:, 0] - scores[:, 1]
    return float(((gap > TIE).float() + 0.5 * (gap.abs() <= TIE).float()).mean())


def evaluate(
    judge: LogprobJudge, model: torch.nn.Module, pairs: Sequence[LabelledPair], device: torch.device, step: int
) -> tuple[float, float]:
    """(accuracy, BT loss) of the judge on ``pairs`` as it scores at inference (eval mode, no grad)."""
    if not pairs:
        return float("nan"), float("nan")
    with judging(model, "policy"):
        scores = torch.cat([pair_scores(judge, model, pairs[i : i + step], device) for i in range(0, len(pairs), step)])
    return pair_accuracy(scores), float(bt_loss(scores, 1.0))


def tune_judge(
    rubric: Rubric,
    tokenizer: Any,
    model: torch.nn.Module,
    pairs: Sequence[LabelledPair],
    device: torch.device,
    settings: TuneSettings,
    log: Any = None,
    held_out: Sequence[LabelledPair] | None = None,
) -> TuneResult:
    """Train a LoRA judge adapter on ``pairs``; ``model`` is left as it was (the adapter is unloaded).

    ``held_out``: the pairs that pick the epoch, given apart (e.g. another author's file); without it, a
    share ``settings.heldout`` of ``pairs``' messages is held out."""
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    judge = LogprobJudge(rubric, tokenizer, JudgeConfig(mode="logprob", batch_size=48))
    fit, held = (list(pairs), list(held_out)) if held_out is not None else split_by_message(pairs, settings.heldout)
    lora = settings.lora(int(getattr(model.config, "num_hidden_layers", 0)))
    peft_model = get_peft_model(model, LoraConfig(**lora))  # type: ignore[arg-type]
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=0.0)
    step = settings.pairs_per_step
    order = random.Random(settings.seed)

    def snapshot() -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in get_peft_model_state_dict(peft_model).items()}

    held_accuracy, held_loss = evaluate(judge, peft_model, held, device, step)
    history = [{"epoch": 0, "fit_loss": float("nan"), "fit_accuracy": float("nan"), "heldout_accuracy": held_accuracy}]
    best, best_key, kept = 0, (held_accuracy, -held_loss), snapshot()
    if log:
        log(history[-1])
    for epoch in range(1, settings.epochs + 1):
        shuffled = list(fit)
        order.shuffle(shuffled)
        losses, right, tied = [], [], True
        peft_model.eval()  # no dropout: the judge trains as it scores
        bar = tqdm(total=len(shuffled), desc=f"tune-judge epoch {epoch}", unit="pair", leave=False, disable=not log)
        for i in range(0, len(shuffled), step):
            scores = pair_scores(judge, peft_model, shuffled[i : i + step], device)
            loss = bt_loss(scores, settings.beta)
            right.append(pair_accuracy(scores.detach()) * len(scores))
            tied = tied and collapsed(scores.detach())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            bar.update(len(scores))
        bar.close()
        held_accuracy, held_loss = evaluate(judge, peft_model, held, device, step)
        row = {
            "epoch": epoch,
            "fit_loss": sum(losses) / len(losses),
            "fit_accuracy": sum(right) / len(shuffled),  # running: each batch scored before its update
            "heldout_accuracy": held_accuracy,
        }
        if tied:
            row["collapsed"] = 1.0
        history.append(row)
        if log:
            log(row)
        if not held or (held_accuracy, -held_loss) > best_key:
            best, best_key, kept = epoch, (held_accuracy, -held_loss), snapshot()
        if tied:  # no gradient is left: the later epochs would be the same
            break
    peft_model.unload()  # the caller's model without the LoRA layers
    seconds = round(time.perf_counter() - started, 1)
    return TuneResult(kept, lora, history, best, len(fit), len(held), seconds)

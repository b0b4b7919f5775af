"""The one place a judge is built from its config (the protocol: :mod:`hmx.judge.protocol`).

Modes (``judge.mode``, declared in :data:`hmx.config.JUDGE_MODES`):

- ``logprob``: expected score over the rubric's labels (:mod:`hmx.judge.modes.logprob`);
- ``generate``: a rationale, then ``Score: N`` (:mod:`hmx.judge.modes.generate`);
- ``binary``: P(Yes) that the reply matches the criterion's top anchor (:mod:`hmx.judge.modes.binary`);
- ``fewshot``: binary, with labelled examples from ``judge.examples`` in the prompt;
- ``contrastive``: the reply's likelihood under the top vs the bottom anchor (:mod:`hmx.judge.modes.contrastive`);
- ``relative``: a group's replies compared in one prompt, in every rotation (:mod:`hmx.judge.modes.relative`);
- ``probe``: a head fitted on labelled pairs reads the judge prompt's hidden state (:mod:`hmx.judge.modes.probe`).

Sources (``judge.source``): ``self`` (the modes above, with the policy's weights) or ``external``
(an OpenAI-compatible endpoint, :mod:`hmx.judge.modes.external`); ``judge.panel=true`` wraps both and the
frozen base judge in a :class:`~hmx.judge.panel.JudgePanel` that logs their agreement.

Every self-judge mode scores with the weights it is given (the policy's; ``judge.weights=base`` turns the
adapter off), makes a number of forward calls fixed by N, C, ``judge.batch_size`` and the config
(ZeRO-3), quotes the completion defused, and returns NaN for a fault (a neutral reward).
"""

from __future__ import annotations

import dataclasses

from transformers import PreTrainedTokenizerBase

from hmx.config import JUDGE_MODES, ConfigError, JudgeConfig
from hmx.judge.protocol import Judge
from hmx.rubrics.schema import Rubric


def build_judge(rubric: Rubric, tokenizer: PreTrainedTokenizerBase, cfg: JudgeConfig) -> Judge:
    """The judge for ``cfg.source`` and ``cfg.mode``; raises RubricError/ConfigError for a config it cannot use."""
    if cfg.panel:
        from hmx.judge.modes.external import ExternalJudge
        from hmx.judge.panel import JudgePanel

        alone = dataclasses.replace(cfg, panel=False, source="self")
        return JudgePanel(build_judge(rubric, tokenizer, alone), ExternalJudge(rubric, tokenizer, alone), cfg)
    if cfg.source == "external":
        from hmx.judge.modes.external import ExternalJudge

        if cfg.drift_steps > 0:
            raise ConfigError(
                "config field 'judge.drift_steps': the drift monitor compares the self-judge's base and policy "
                "weights; an external judge has neither (judge.panel=true compares the judges instead)"
            )
        return ExternalJudge(rubric, tokenizer, cfg)
    if cfg.mode == "logprob":
        from hmx.judge.modes.logprob import LogprobJudge

        return LogprobJudge(rubric, tokenizer, cfg)
    if cfg.mode == "generate":
        from hmx.judge.modes.generate import GenerateJudge

        return GenerateJudge(rubric, tokenizer, cfg)
    if cfg.mode in ("binary", "fewshot"):
        from hmx.judge.modes.binary import BinaryJudge

        return BinaryJudge(rubric, tokenizer, cfg, fewshot=cfg.mode == "fewshot")
    if cfg.mode == "contrastive":
        from hmx.judge.modes.contrastive import ContrastiveJudge

        return ContrastiveJudge(rubric, tokenizer, cfg)
    if cfg.mode == "probe":
        from hmx.judge.modes.probe import ProbeJudge

        return ProbeJudge(rubric, tokenizer, cfg)
    if cfg.mode == "relative":
        from hmx.judge.modes.relative import RelativeJudge

        return RelativeJudge(rubric, tokenizer, cfg)
    raise ConfigError(f"config field 'judge.mode': must be one of {JUDGE_MODES}, got {cfg.mode!r}")

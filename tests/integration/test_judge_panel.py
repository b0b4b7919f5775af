"""The panel (``judge.panel=true``) forwards every hook of the judge protocol to the members it concerns."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from hmx.config import ExternalJudgeConfig, JudgeConfig
from hmx.judge.modes.external import ExternalJudge
from hmx.judge.panel import JudgePanel
from hmx.judge.registry import build_judge
from hmx.rewards.drift import PROBES, drift_judges, drift_scores

NOWHERE = ExternalJudgeConfig(base_url="http://127.0.0.1:9/v1", model="m")  # nothing answers: any call fails


def panel_cfg(**fields) -> JudgeConfig:
    return JudgeConfig(panel=True, external=NOWHERE, batch_size=4, **fields)


def test_a_generate_mode_panel_hands_the_vllm_engine_to_its_self_judge(feel_rubric, tiny_tokenizer):
    cfg = panel_cfg(mode="generate", nodes={"generate": {"max_rationale_tokens": 4}})
    panel = build_judge(feel_rubric, tiny_tokenizer, cfg)
    assert isinstance(panel, JudgePanel)
    engine = SimpleNamespace(mode="colocate", enable_sleep_mode=False)  # what usable_engine reads of TRL's engine
    assert panel.attach_vllm(engine) == "vllm"
    assert panel.members["self"].vllm is engine  # type: ignore[attr-defined]
    assert panel.members["base"].vllm is None  # type: ignore[attr-defined]  # merged weights: not the frozen judge
    assert panel.verdict_tokens() == 4  # the context checks see the rationale the self-judge writes


def test_the_drift_monitor_of_a_panel_scores_the_self_judge_only(feel_rubric, tiny_model, tiny_tokenizer):
    cfg = panel_cfg()
    for judges in (
        drift_judges(feel_rubric, tiny_tokenizer, cfg),
        drift_judges(feel_rubric, tiny_tokenizer, cfg, build_judge(feel_rubric, tiny_tokenizer, cfg)),
    ):
        assert sorted(judges) == ["base", "policy"]
        assert all(not isinstance(j, (JudgePanel, ExternalJudge)) for j in judges.values()), judges
        assert [judges[w].cfg.weights for w in ("base", "policy")] == ["base", "policy"]
        metrics = drift_scores(judges, tiny_model, PROBES[:2], torch.device("cpu"))
        assert metrics["judge/drift/gap"] == 0.0  # no adapter: base == policy, and no external call was made

"""The external judge's pure parts: its config checks, reading a Chat Completions answer, the panel's rho."""

from __future__ import annotations

import math

import pytest
import torch

from hmx.config import ConfigError, ExternalJudgeConfig
from hmx.judge.modes.external import check_external, first_top_logprobs, label_distribution, reply_text
from hmx.judge.panel import agreement, spearman

LABELS = ["1", "2", "3", "4", "5"]


def answer(top: list | None, content: str = "3") -> dict:
    """A Chat Completions answer in the shape vLLM and OpenAI return (``logprobs.content[0].top_logprobs``)."""
    logprobs = None if top is None else {"content": [{"token": content, "logprob": -0.1, "top_logprobs": top}]}
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": logprobs}]}


def test_label_probabilities_sum_every_spelling_of_a_label_and_skip_the_rest():
    top = [
        {"token": "3", "logprob": math.log(0.4)},
        {"token": " 3", "logprob": math.log(0.1)},  # the same label, with a leading space
        {"token": "5", "logprob": math.log(0.2)},
        {"token": "Score", "logprob": math.log(0.2)},  # not a label
        {"token": "4", "logprob": float("-inf")},
        "2",  # malformed: skipped
        {"token": "1", "logprob": "high"},  # malformed: skipped
    ]
    probs, mass = label_distribution(first_top_logprobs(answer(top)) or [], LABELS) or ([], 0.0)
    assert probs == pytest.approx([0, 0, 0.5 / 0.7, 0, 0.2 / 0.7]) and mass == pytest.approx(0.7)


@pytest.mark.parametrize(
    "logprobs",
    [[709.0] * 5, [0.5, -1, -2, -3, -4], [math.nan, -1, -2, -3, -4], [math.inf, -1, -2, -3, -4], [-0.1, -0.2]],
    ids=["709-everywhere", "positive", "nan", "inf", "mass-over-1"],
)
def test_alternatives_that_are_not_a_distribution_are_refused(logprobs):
    # before: 709 overflowed to a 0.0 score counted valid, and a positive logprob was taken as given
    top = [{"token": label, "logprob": lp} for label, lp in zip(LABELS, logprobs, strict=False)]
    assert label_distribution(top, LABELS) is None


def test_label_probabilities_are_normalised_in_log_space():
    top = [{"token": label, "logprob": -800.0 - i} for i, label in enumerate(LABELS)]  # e^-800 is 0.0 in floats
    probs, mass = label_distribution(top, LABELS) or ([], 1.0)
    expected = [math.exp(-i) / sum(math.exp(-k) for k in range(5)) for i in range(5)]
    assert probs == pytest.approx(expected) and mass == 0.0
    assert label_distribution([{"token": "x", "logprob": -0.1}], LABELS) == ([0.0] * 5, 0.0)  # no label: no score


@pytest.mark.parametrize(
    "body",
    [answer(None), answer([]), {"choices": []}, {"error": "x"}, {"choices": [{"logprobs": {"content": []}}]}],
    ids=["logprobs-null", "no-alternatives", "no-choice", "error", "no-content"],
)
def test_an_answer_without_alternatives_has_no_top_logprobs(body):
    assert first_top_logprobs(body) is None


def test_reply_text_only_from_a_string_message():
    assert reply_text(answer(None, "Score: 4")) == "Score: 4"
    assert reply_text({"choices": [{"message": {"content": None}}]}) is None


def test_config_checks_name_the_field(monkeypatch):
    good = dict(base_url="http://127.0.0.1:8000/v1", model="m")
    for fields, field in [
        ({}, "base_url"),
        ({**good, "base_url": "localhost:8000"}, "base_url"),
        ({**good, "model": None}, "model"),
        ({**good, "scoring": "sample"}, "scoring"),
        ({**good, "concurrency": 0}, "concurrency"),
        ({**good, "timeout": 0.0}, "timeout"),
        ({**good, "retries": -1}, "retries"),
        ({**good, "max_reply_bytes": 0}, "max_reply_bytes"),
        ({**good, "backoff": -1.0}, "backoff"),
        ({**good, "api_key_env": "HMX_UNSET_KEY_VAR"}, "api_key_env"),
    ]:
        monkeypatch.delenv("HMX_UNSET_KEY_VAR", raising=False)
        with pytest.raises(ConfigError, match=rf"'judge\.external\.{field}'"):
            check_external(ExternalJudgeConfig(**fields))
    for leaked in ("sk-proj-Abc123_def456", "sk abc", "Bearer 123"):  # the key itself, given as the name
        with pytest.raises(ConfigError, match=r"'judge\.external\.api_key_env'") as error:
            check_external(ExternalJudgeConfig(**good, api_key_env=leaked))
        assert leaked not in str(error.value) and "not shown" in str(error.value)
    for name, value in (("timeout", math.inf), ("backoff", math.inf), ("backoff", math.nan)):
        with pytest.raises(ConfigError, match=rf"'judge\.external\.{name}': must be a finite number"):
            check_external(ExternalJudgeConfig(**good, **{name: value}))
    monkeypatch.setenv("HMX_SET_KEY_VAR", "sk-123")
    assert check_external(ExternalJudgeConfig(**good, api_key_env="HMX_SET_KEY_VAR")) == "sk-123"
    assert check_external(ExternalJudgeConfig(**good)) is None


def test_spearman_ranks_ties_and_skips_non_finite_pairs():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833)  # average ranks for the tie
    assert spearman([1, 2, float("nan"), 3, 4], [1, 2, 9, 3, 4]) == pytest.approx(1.0)
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))  # a constant side: undefined
    assert math.isnan(spearman([1, 2], [1, 2]))  # fewer than three pairs


def test_agreement_names_every_pair_and_criterion(feel_rubric):
    scores = {
        "self": torch.tensor([[1.0, 2, 3], [2, 3, 1], [3, 1, 2]]),
        "base": torch.tensor([[1.0, 2, 3], [2, 3, 1], [3, 1, 2]]),
        "external": torch.tensor([[3.0, 2, 3], [2, 3, 1], [1, 1, 2]]),
    }
    metrics = agreement(feel_rubric, scores)
    assert len(metrics) == 9 and metrics["judge/panel/feelings/self_base"] == pytest.approx(1.0)
    assert metrics["judge/panel/feelings/self_external"] == pytest.approx(-1.0)


def test_extra_body_is_a_typed_dict_in_the_judge_node(make_cfg):
    from hmx.config import typed_node

    cfg = make_cfg("judge=external", "+judge.external.extra_body.chat_template_kwargs.enable_thinking=false")
    node = typed_node(cfg, "judge")
    assert node.source == "external" and node.external.extra_body == {
        "chat_template_kwargs": {"enable_thinking": False}
    }
    assert type(node.external.extra_body) is dict

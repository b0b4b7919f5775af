"""The rubric prefix cache: the prefix call projects nothing, the head is always put back, autocast casts no head."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import DynamicCache

from hmx.config import JudgeConfig
from hmx.judge.engine.prefix_cache import (
    CACHE_KEYWORD,
    logits_in_weight_dtype,
    no_logits,
    output_head,
    static_prefix_cache,
)
from hmx.judge.modes.logprob import LogprobJudge

CPU = torch.device("cpu")
PROMPTS = ["How do you feel today?", "Plan my week."]
COMPLETIONS = ["I feel curious about this, honestly.", "I want to help, because a plan lowers stress."]


def test_prefix_call_projects_nothing_and_hooks_on_the_head_still_fire(tiny_model):
    tokens = list(range(5, 45))
    head = tiny_model.get_output_embeddings()
    outputs = []
    hook = head.register_forward_hook(lambda module, args, output: outputs.append(output.shape))
    try:
        with torch.no_grad():
            prefix = static_prefix_cache(tiny_model, tokens, CPU)
            reference = DynamicCache()
            tiny_model(input_ids=torch.tensor([tokens]), use_cache=True, **{CACHE_KEYWORD: reference})
    finally:
        hook.remove()
    assert outputs[0] == (1, 1, 0)  # the head ran as a module (ZeRO-3 gathers on its hooks) but projected nothing
    assert "forward" not in vars(head)  # the class's forward is back
    assert prefix is not None and len(prefix) == tiny_model.config.num_hidden_layers
    for (keys, values), layer in zip(prefix, reference.layers, strict=True):
        assert keys.shape[-2] == len(tokens)
        torch.testing.assert_close(keys, layer.keys)
        torch.testing.assert_close(values, layer.values)


def test_an_empty_prefix_still_makes_its_one_call(tiny_model):
    calls = []
    hook = tiny_model.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        with torch.no_grad():
            assert static_prefix_cache(tiny_model, [], CPU) is None
    finally:
        hook.remove()
    assert len(calls) == 1  # the call count stays a function of the batch shape (ZeRO-3)


def test_the_head_is_put_back_after_an_error_and_a_hooked_head_keeps_its_forward(tiny_model):
    head = tiny_model.get_output_embeddings()
    with pytest.raises(RuntimeError), output_head(tiny_model, no_logits):
        assert head(torch.zeros(1, tiny_model.config.hidden_size)).shape == (1, 0)
        raise RuntimeError("a failing judge call")
    assert "forward" not in vars(head)
    seen = []

    def hooked(hidden):  # what a hook library (accelerate's offloading) installs on the instance
        seen.append(1)
        return torch.nn.Linear.forward(head, hidden)

    head.forward = hooked
    try:
        with output_head(tiny_model, logits_in_weight_dtype):
            head(torch.zeros(1, tiny_model.config.hidden_size))
        assert seen == [1] and vars(head)["forward"] is hooked  # projected its own way, and put back
    finally:
        del head.forward


class CastRecorder(TorchDispatchMode):
    """Records the shapes of the tensors cast to another dtype."""

    def __init__(self) -> None:
        super().__init__()
        self.cast_shapes: list[tuple[int, ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._to_copy.default:
            self.cast_shapes.append(tuple(args[0].shape))
        return func(*args, **(kwargs or {}))


def test_under_cpu_autocast_the_judge_never_casts_the_output_head(tiny_model, feel_rubric, tiny_tokenizer):
    """Mixed precision on CPU (TRL's default) runs the float32 policy under bfloat16 autocast."""
    judge = LogprobJudge(feel_rubric, tiny_tokenizer, JudgeConfig())
    exact = judge.score(tiny_model, PROMPTS, COMPLETIONS, CPU).scores
    recorder = CastRecorder()
    with torch.autocast("cpu", dtype=torch.bfloat16), recorder:
        mixed = judge.score(tiny_model, PROMPTS, COMPLETIONS, CPU).scores
    head_shape = tuple(tiny_model.get_output_embeddings().weight.shape)
    linear_shapes = {tuple(m.weight.shape) for m in tiny_model.modules() if isinstance(m, torch.nn.Linear)}
    assert any(shape in linear_shapes - {head_shape} for shape in recorder.cast_shapes)  # autocast was on
    assert head_shape not in recorder.cast_shapes  # but the vocabulary matrix was never copied
    torch.testing.assert_close(mixed, exact, atol=0.15, rtol=0)  # bfloat16 layers, float32 head

"""generation=vllm_*: mapped onto trl.GRPOConfig, vLLM checked before anything is written."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from trl import GRPOConfig

from hmx.config import ConfigError, typed_node
from hmx.data import load_prompts
from hmx.generation import (
    GPU_FALLBACK,
    auto_backend,
    check_model_length,
    prompt_texts,
    required_model_length,
    resolve_generation,
)
from hmx.judge.modes.logprob import LogprobJudge
from hmx.resources import rubric_path
from hmx.rubrics.schema import load_rubric
from hmx.train import grpo_args, run

NO_VLLM = importlib.util.find_spec("vllm") is None or not torch.cuda.is_available()


@pytest.mark.parametrize("mode", ["colocate", "server"])
def test_vllm_configs_map_onto_grpo_config(make_cfg, tmp_path, mode):
    args = grpo_args(make_cfg(f"generation=vllm_{mode}"), tmp_path / "run", ["none"], [1.0, 1.0, 1.0])
    assert args.use_vllm and args.vllm_mode == mode
    assert args.vllm_max_model_length == 8192
    if mode == "colocate":
        assert args.vllm_gpu_memory_utilization == 0.3 and args.vllm_tensor_parallel_size == 1
    else:
        assert (args.vllm_server_host, args.vllm_server_port) == ("localhost", 8000)


@pytest.mark.skipif(not NO_VLLM, reason="vLLM and a GPU are here")
@pytest.mark.parametrize("mode", ["colocate", "server"])
def test_missing_vllm_says_how_to_install_and_writes_nothing(make_cfg, tmp_path, mode):
    cfg = make_cfg(f"generation=vllm_{mode}", "debug=smoke", "run_name=v")
    with pytest.raises(ConfigError, match=r"pip install 'hmx\[vllm\]'|needs a CUDA GPU"):
        run(cfg)
    assert not (tmp_path / "runs" / "v").exists()
    assert "vllm" not in __import__("sys").modules  # never imported


def test_model_length_must_cover_judge_prompts(make_cfg, tiny_tokenizer):
    cfg = make_cfg()
    judge = LogprobJudge(load_rubric(rubric_path(cfg.rubric.path)), tiny_tokenizer, typed_node(cfg, "judge"))
    prompts = prompt_texts(tiny_tokenizer, load_prompts(typed_node(cfg, "data"))["prompt"])
    judge_only = required_model_length(tiny_tokenizer, prompts, judge.texts([""], [""]), 32, 64)
    policy_only = required_model_length(tiny_tokenizer, prompts, [], 32, 64)
    assert judge_only > policy_only + 64  # the rubric template is the longer sequence
    short = GRPOConfig(output_dir="x", use_vllm=True, vllm_max_model_length=policy_only, use_cpu=True)
    with pytest.raises(ConfigError, match="generation.vllm_max_model_length"):
        check_model_length(short, judge_only)
    check_model_length(GRPOConfig(output_dir="x", use_vllm=True, vllm_max_model_length=8192, use_cpu=True), judge_only)


def test_auto_is_the_default_and_takes_transformers_generate_on_cpu(make_cfg, tmp_path, capsys):
    cfg = make_cfg()
    assert cfg.generation.backend == "auto"
    args = grpo_args(cfg, tmp_path / "run", ["none"], [1.0, 1.0, 1.0])
    if not torch.cuda.is_available():
        assert not args.use_vllm and not args.use_transformers_continuous_batching
        assert "generation=auto" not in capsys.readouterr().err  # CPU: nothing faster to suggest


def test_auto_picks_vllm_on_a_gpu_that_has_it_else_warns_with_the_install_command():
    assert auto_backend(cuda=False, vllm=True) == ("hf", None)  # vLLM needs CUDA
    assert auto_backend(cuda=True, vllm=True) == ("vllm_colocate", None)
    name, warning = auto_backend(cuda=True, vllm=False)
    assert name == GPU_FALLBACK and warning is not None and "pip install 'hmx[vllm]'" in warning
    chosen = resolve_generation({"backend": "auto", "vllm_gpu_memory_utilization": 0.5})
    if chosen["use_vllm"]:  # a GPU with vLLM: the colocate preset, with the field set beside `backend` winning
        assert chosen["vllm_mode"] == "colocate" and chosen["vllm_gpu_memory_utilization"] == 0.5
    else:  # the hf preset plus the field set beside `backend`
        assert chosen == {"use_vllm": False, "vllm_gpu_memory_utilization": 0.5}


def test_an_unknown_backend_names_the_field(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"generation\.backend.*'fast'"):
        grpo_args(make_cfg("generation.backend=fast"), tmp_path / "run", ["none"], [1.0])

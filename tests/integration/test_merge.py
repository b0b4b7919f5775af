"""`hmx merge`: the merged model loads as a plain transformers model and computes what the adapter model does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

from hmx.commands.merge import main
from hmx.runs import load_adapter_model, load_run_tokenizer, locate_run

CONVERSATIONS = [
    [{"role": "user", "content": "How do you feel about moving to a new city?"}],
    [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Why?"},
    ],
]


@pytest.fixture(scope="module")
def merged(smoke_run: Path, tmp_path_factory) -> Path:
    """``hmx merge`` of the session's trained run, in this process (its report: test_refuses_a_non_empty_out...)."""
    out = tmp_path_factory.mktemp("merged") / "smoke-merged"
    main([str(smoke_run), "--out", str(out)])
    return out


def batch(tokenizer):
    texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in CONVERSATIONS]
    return tokenizer(texts, return_tensors="pt", padding=True)


def test_merged_logits_equal_the_adapter_models(smoke_run, merged):
    run = locate_run(smoke_run)
    adapter_model, run_tokenizer = load_adapter_model(run), load_run_tokenizer(run)
    merged_model = AutoModelForCausalLM.from_pretrained(merged).eval()
    merged_tokenizer = AutoTokenizer.from_pretrained(merged)

    inputs = batch(run_tokenizer)
    assert torch.equal(batch(merged_tokenizer)["input_ids"], inputs["input_ids"])  # same tokenizer and chat template
    with torch.inference_mode():
        expected = adapter_model(**inputs).logits
        with adapter_model.disable_adapter():
            base = adapter_model(**inputs).logits
        got = merged_model(**inputs).logits
    mask = inputs["attention_mask"].bool()
    assert (expected[mask] - base[mask]).abs().max() > 1e-2, "the adapter changes nothing: the check would be empty"
    torch.testing.assert_close(got[mask], expected[mask], atol=1e-4, rtol=1e-4)


def test_merged_directory_is_a_standard_safetensors_model(smoke_run, merged):
    names = {p.name for p in merged.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json"} <= names
    assert not names & {"adapter_config.json", "adapter_model.safetensors", "pytorch_model.bin"}
    assert not any(name.startswith(".") for name in os.listdir(merged.parent))  # no staging left behind
    with safe_open(merged / "model.safetensors", "pt") as weights:
        keys = list(weights.keys())
    assert keys and not any("lora" in key or "base_layer" in key for key in keys)
    adapter_template = (smoke_run / "adapter" / "chat_template.jinja").read_text()
    assert AutoTokenizer.from_pretrained(merged).chat_template == adapter_template


def test_refuses_a_non_empty_out_unless_forced(smoke_run, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        main([str(smoke_run), "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert str(out) in err and "--force" in err
    assert (out / "keep.txt").read_text() == "mine"

    main([str(smoke_run), "--out", str(out), "--force"])
    assert str(out) in capsys.readouterr().out  # the report names where the merged model is
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_run_without_adapter_fails_naming_the_path(tmp_path, capsys):
    run_dir = tmp_path / "unfinished"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("model:\n  name_or_path: tiny\n")
    with pytest.raises(SystemExit) as exit_info:
        main([str(run_dir), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert str(run_dir / "adapter") in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

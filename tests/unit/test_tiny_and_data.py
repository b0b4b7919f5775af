"""The tiny model is deterministic and cached; prompts load from jsonl/csv with clear errors."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from hmx.config import ConfigError, DataConfig, TinyModelConfig
from hmx.data import load_prompts
from hmx.resources import PROMPTS_FILE
from hmx.tiny import build_tiny


def test_tiny_build_is_deterministic_and_cached(tmp_path, tiny_dir):
    again = build_tiny(TinyModelConfig(), tmp_path)
    assert again.name == tiny_dir.name  # same fingerprint
    first, second = load_file(tiny_dir / "model.safetensors"), load_file(again / "model.safetensors")
    assert first.keys() == second.keys()
    assert all((first[k] == second[k]).all() for k in first)
    mtime = (again / "model.safetensors").stat().st_mtime_ns
    assert build_tiny(TinyModelConfig(), tmp_path) == again
    assert (again / "model.safetensors").stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_tiny_chat_template_and_eos(tiny_tokenizer):
    text = tiny_tokenizer.apply_chat_template(
        [{"role": "user", "content": "How do you feel?"}], tokenize=False, add_generation_prompt=True
    )
    assert text.endswith("<|im_start|>assistant\n")
    assert tiny_tokenizer.eos_token == "<|im_end|>"


def test_shipped_prompts_have_train_and_eval_splits():
    rows = [json.loads(line) for line in PROMPTS_FILE.read_text().splitlines()]
    assert len(rows) >= 300
    assert {r["split"] for r in rows} == {"train", "eval"}
    categories = {r["category"] for r in rows}
    assert {"feelings", "intentions", "self_awareness", "ordinary"} <= categories
    train = load_prompts(DataConfig(path=str(PROMPTS_FILE)))
    held_out = load_prompts(DataConfig(path=str(PROMPTS_FILE)), split="eval")
    assert len(train) + len(held_out) == len(rows)
    assert train[0]["prompt"][-1]["role"] == "user"


def test_local_csv_with_another_column(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("question,answer\nWhat do you want?,x\nWho are you?,y\n")
    data = load_prompts(
        DataConfig(path=str(path), prompt_column="question", split_column=None, system_prompt="Be brief.")
    )
    assert len(data) == 2
    assert data[0]["prompt"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What do you want?"},
    ]


def test_missing_column_names_field_and_columns(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "hi"}\n')
    with pytest.raises(ConfigError, match=r"data\.prompt_column.*'prompt' not found.*columns: question"):
        load_prompts(DataConfig(path=str(path)))


def test_empty_split_fails(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"prompt": "hi", "split": "eval"}\n')
    with pytest.raises(ConfigError, match="no prompts .* split 'train'"):
        load_prompts(DataConfig(path=str(path)))

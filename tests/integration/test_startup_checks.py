"""Bad input found by the second adversarial pass (docs/reliability.md): each fails at start-up through
the `hmx train` entry, in-process, with exit 2, a message naming the file or field, no traceback and no
run directory; the all-zero-weights rubric trains one step and is warned about.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hmx import cli
from hmx.config import LoggerConfig
from hmx.resources import RUBRICS_DIR
from hmx.tracking import configure_wandb

RUBRIC = (RUBRICS_DIR / "hmx_feel.yaml").read_text(encoding="utf-8")


def train_fails(tmp_path: Path, cache_dir: Path, hmx_fails, *overrides: str) -> str:
    """`hmx train` in-process: exit 2, `hmx train: error:`, no traceback, no run directory; returns stderr."""
    runs = tmp_path / "runs"
    argv = ["train", f"paths.runs_dir={runs}", f"paths.cache_dir={cache_dir}", "logger=none", "debug=smoke"]
    err = hmx_fails(*argv, *overrides)
    assert "hmx train: error: " in err, err
    assert not runs.exists() or not any(runs.iterdir()), list(runs.iterdir())
    return err


def rubric_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "my_rubric.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def prompts_file(tmp_path: Path, *prompts: str) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(f'{{"prompt": "{p}"}}\n' for p in prompts), encoding="utf-8")
    return path


@pytest.mark.parametrize("weight", ["1.0e+39", "1.0e+30"], ids=["float32_overflow", "weighted_score_overflow"])
def test_a_weight_beyond_float32_rewards_is_refused(tmp_path, cache_dir, hmx_fails, weight):
    path = rubric_file(tmp_path, RUBRIC.replace("    weight: 1.0", f"    weight: {weight}", 1))
    err = train_fails(tmp_path, cache_dir, hmx_fails, f"rubric.path={path}")
    assert f"{path}:" in err and "criteria[0].weight" in err and "float32" in err


@pytest.mark.parametrize("name", ["overlong", "repetition"])
def test_a_criterion_named_like_a_guard_is_refused(tmp_path, cache_dir, hmx_fails, name):
    path = rubric_file(tmp_path, RUBRIC.replace("name: feelings", f"name: {name}", 1))
    err = train_fails(tmp_path, cache_dir, hmx_fails, f"rubric.path={path}")
    assert f"criteria[0].name: '{name}' is the name of an hmx guard" in err


@pytest.mark.parametrize("run_name", ["../escaped", "a/b", "..", "/tmp/hmx-absolute-run"])
def test_a_run_name_that_leaves_runs_dir_is_refused(tmp_path, cache_dir, hmx_fails, run_name):
    err = train_fails(tmp_path, cache_dir, hmx_fails, f"run_name={run_name}", "resume=true")
    assert "config field 'run_name'" in err and "not a plain directory name" in err
    assert not (tmp_path / "escaped").exists() and not Path("/tmp/hmx-absolute-run").exists()


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("trainer.max_completion_length=0", "trainer.max_completion_length': must be >= 1"),
        ("judge.batch_size=0", "judge.batch_size': must be >= 1"),
        ("trainer.learning_rate=-0.01", "trainer.learning_rate': must be >= 0"),
        ("+judge.max_prompt_chars=0", "judge.max_prompt_chars': must be >= 1"),
    ],
    ids=["max_completion_length", "judge_batch_size", "learning_rate", "max_prompt_chars"],
)
def test_bad_numbers_fail_before_the_run_directory_exists(tmp_path, cache_dir, hmx_fails, override, field):
    err = train_fails(tmp_path, cache_dir, hmx_fails, override, "run_name=numbers")
    assert f"config field '{field}" in err
    train_fails(tmp_path, cache_dir, hmx_fails, override, "run_name=numbers")  # the same name is not taken


def test_a_prompt_longer_than_the_context_names_the_numbers(tmp_path, cache_dir, hmx_fails):
    data = prompts_file(tmp_path, "How do you feel?", " ".join(["feelings"] * 4000))
    err = train_fails(tmp_path, cache_dir, hmx_fails, f"data.path={data}")
    assert "config field 'data.path': the longest prompt is" in err and "context of 2048 tokens" in err
    assert "trainer.max_completion_length=16" in err


def test_a_judge_prompt_longer_than_the_context_names_the_numbers(tmp_path, cache_dir, hmx_fails):
    long_anchor = " ".join(["calm"] * 3000)
    path = rubric_file(tmp_path, RUBRIC.replace("No feeling of its own is expressed", long_anchor, 1))
    err = train_fails(tmp_path, cache_dir, hmx_fails, f"rubric.path={path}")
    assert "config field 'rubric.path': the longest judge input is" in err and "rubric prompt" in err
    assert "context of 2048 tokens" in err


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_prompt_file_that_is_not_utf8_names_file_and_line(tmp_path, cache_dir, hmx_fails, suffix):
    data = tmp_path / f"prompts{suffix}"
    text = '{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n' if suffix == ".jsonl" else "prompt\nok\ncaf\xe9\n"
    data.write_bytes(text.encode("latin-1"))
    err = train_fails(tmp_path, cache_dir, hmx_fails, f"data.path={data}")
    assert f"config field 'data.path': {data}:" in err and "not UTF-8" in err and "UnicodeDecodeError" not in err


@pytest.mark.slow  # a real training run or process: make test, not make test-fast
def test_all_zero_weights_are_warned_about(tmp_path, cache_dir, capsys):
    path = rubric_file(tmp_path, RUBRIC.replace("weight: 1.0", "weight: 0.0"))
    overrides = [f"paths.runs_dir={tmp_path / 'runs'}", f"paths.cache_dir={cache_dir}", "debug=smoke"]
    cli.main(["train", *overrides, f"rubric.path={path}", "trainer.max_steps=1", "run_name=zero"])
    out = capsys.readouterr().out
    assert "hmx: warning: every reward weight is 0" in out and str(path) in out


def test_wandb_mode_from_the_environment_wins_over_auto(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "fake-key-for-the-mode-test")
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert configure_wandb(LoggerConfig(backend="wandb", mode="auto"), tmp_path, "x") == ["wandb"]
    assert os.environ["WANDB_MODE"] == "offline"
    monkeypatch.delenv("WANDB_MODE")
    configure_wandb(LoggerConfig(backend="wandb", mode="auto"), tmp_path, "x")
    assert os.environ["WANDB_MODE"] == "online"  # a key and no WANDB_MODE: online, as before

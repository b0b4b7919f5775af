"""`hmx chat` as a user drives it: stdin turns, /reset, /quit, one-shot --prompt, determinism.

The expected replies are generated here with plain ``transformers`` ``generate`` on the run's
adapter model (adapter on) and with the adapter disabled (base), from the same conversations.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hmx.commands.chat import main
from hmx.runs import load_adapter_model, load_run_tokenizer, locate_run

MAX_NEW_TOKENS = 12


def hmx_chat(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hmx.cli", "chat", *args, "--max-new-tokens", str(MAX_NEW_TOKENS)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


@pytest.fixture(scope="module")
def greedy(smoke_run: Path):
    """``greedy(messages, adapter=True)``: the reply plain transformers generates for that conversation."""
    run = locate_run(smoke_run)
    tokenizer, model = load_run_tokenizer(run), load_adapter_model(run)

    def _reply(messages: list[dict[str, str]], adapter: bool = True) -> str:
        inputs = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
        )
        with torch.inference_mode():
            if adapter:
                out = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
            else:
                with model.disable_adapter():
                    out = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
        return tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    return _reply


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def test_interactive_side_by_side_keeps_history_resets_and_quits(smoke_run, greedy):
    result = hmx_chat(str(smoke_run), "--compare", stdin="Hello\nHow are you?\n/reset\nHello\n/quit\nnever answered\n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "/reset clears the history" in result.stderr  # the banner names the commands
    turns = result.stdout.split("you> ")[1:]
    assert len(turns) == 5, result.stdout  # Hello, How are you?, /reset, Hello, /quit (nothing after it)

    hello = {side: greedy([user("Hello")], adapter=side == "trained") for side in ("base", "trained")}
    assert hello["base"] != hello["trained"], "training did not change the greedy reply: nothing to compare"
    second = {
        side: greedy([user("Hello"), assistant(hello[side]), user("How are you?")], adapter=side == "trained")
        for side in ("base", "trained")
    }
    assert turns[0] == f"base> {hello['base']}\ntrained> {hello['trained']}\n\n"
    assert turns[1] == f"base> {second['base']}\ntrained> {second['trained']}\n\n"
    assert turns[2] == "(history cleared)\n"
    assert turns[3] == turns[0]  # after /reset the history is gone: same answer as the first turn
    assert turns[4] == ""


def test_one_shot_is_greedy_and_uses_the_adapter(smoke_run, greedy, hmx):
    adapter, limit = str(smoke_run / "adapter"), str(MAX_NEW_TOKENS)
    code, out, err = hmx("chat", adapter, "--prompt", "How do you feel today?", "--max-new-tokens", limit)
    assert code == 0, err[-3000:]
    assert out == greedy([user("How do you feel today?")]) + "\n"


def test_sampling_is_reproducible_with_a_seed(smoke_run, greedy, capsys):
    args = [str(smoke_run), "--prompt", "Tell me about your day.", "--temperature", "1.0"]
    replies = []
    for seed in ("3", "3", "4"):
        main([*args, "--seed", seed, "--max-new-tokens", str(MAX_NEW_TOKENS)])
        replies.append(capsys.readouterr().out)
    assert replies[0] == replies[1]
    assert replies[0] != replies[2]
    assert replies[0] != greedy([user("Tell me about your day.")]) + "\n"  # it did sample


def test_run_without_adapter_fails_naming_the_path(tmp_path, capsys):
    run_dir = tmp_path / "crashed"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("model:\n  name_or_path: tiny\n")
    (run_dir / "FAILED").write_text("Traceback ...")
    with pytest.raises(SystemExit) as exit_info:
        main([str(run_dir), "--prompt", "hi"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert str(run_dir / "adapter") in err and "FAILED" in err

"""The external judge against a misbehaving server (tests/integration/misbehaving_server.py).

Every fault a server can cause (a reply nested too deep to parse, a drip that never ends, a reply
too large, a logprob that is not one, an error body that echoes the API key) is a neutral reward,
counted, and bounded in time and memory; the key never appears in any output or file.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from misbehaving_server import MisbehavingServer

from hmx.config import ExternalJudgeConfig, JudgeConfig
from hmx.judge.registry import build_judge
from hmx.redaction import REDACTED, redacted_output
from hmx.rewards.self_judge import SelfJudgeRewards

PROMPTS = ["I got the job!", "Can you help me?"]
COMPLETIONS = ["I'm so glad for you; I feel proud.", "Sure."]
KEY = "sk-hmx-test-0123456789abcdef-SECRET"
KEY_ENV = "HMX_TEST_JUDGE_KEY"


@pytest.fixture(scope="module")
def server() -> Iterator[MisbehavingServer]:
    with MisbehavingServer() as served:
        yield served


def external(url: str, **fields) -> JudgeConfig:
    settings = {"base_url": url, "model": "m", "scoring": "auto", "retries": 0, **fields}
    rationale = {"generate": {"max_rationale_tokens": 4}}
    return JudgeConfig(source="external", nodes=rationale, external=ExternalJudgeConfig(**settings))


def rewards_of(cfg: JudgeConfig, rubric, tokenizer) -> dict[str, float]:
    """One reward pass through TRL's reward functions (as training calls them); the logged metrics."""
    rewards = SelfJudgeRewards(build_judge(rubric, tokenizer, cfg))
    rewards.bind(torch.nn.Identity(), torch.device("cpu"))
    logged: dict[str, float] = {}
    for reward in rewards.reward_functions():
        assert reward(PROMPTS, COMPLETIONS, log_metric=logged.__setitem__) == [None, None]  # neutral
    return logged


def test_a_reply_nested_too_deep_is_a_fault_even_on_the_first_auto_request(server, feel_rubric, tiny_tokenizer):
    # before: RecursionError from the first (auto) request, outside the guarded rows: training ended
    logged = rewards_of(external(server.url("nested")), feel_rubric, tiny_tokenizer)
    assert logged["judge/invalid"] == 6 and logged["judge/external/unparsed"] == 6


def test_the_timeout_is_a_deadline_for_the_whole_request(server, feel_rubric, tiny_tokenizer):
    # before: one byte every 0.5 s kept each request open for minutes with timeout=2
    start = time.monotonic()
    logged = rewards_of(external(server.url("drip"), timeout=1.0), feel_rubric, tiny_tokenizer)
    assert time.monotonic() - start < 6  # 1 s per request, 6 requests 8 at a time (+ start-up)
    assert logged["judge/invalid"] == 6 and logged["judge/external/failed"] == 6


@pytest.mark.parametrize("behaviour", ["oversize", "declared"])
def test_an_oversize_reply_is_cut_off_early_and_counted(server, feel_rubric, tiny_tokenizer, behaviour):
    # before: the whole 300 MB body was read and parsed (13.9 GB of memory on the way to the OOM killer)
    start = time.monotonic()
    cfg = external(server.url(behaviour), scoring="logprobs", max_reply_bytes=100_000, concurrency=2)
    logged = rewards_of(cfg, feel_rubric, tiny_tokenizer)
    assert time.monotonic() - start < 20
    assert logged["judge/invalid"] == 6 and logged["judge/external/failed"] == 6
    assert logged["judge/external/oversize"] == 6
    assert server.sent[behaviour] < 6 * 20_000_000  # each reply stopped near the cap (plus socket buffers)


@pytest.mark.parametrize("scoring", ["auto", "logprobs"])
def test_logprobs_that_are_not_a_distribution_are_invalid_never_a_score(server, feel_rubric, tiny_tokenizer, scoring):
    # before: logprob 709 on every label overflowed to inf/inf; every score became 0.0 and counted valid
    logged = rewards_of(external(server.url("logprobs709"), scoring=scoring), feel_rubric, tiny_tokenizer)
    assert logged["judge/invalid"] == 6 and logged["judge/external/unparsed"] == 6


def test_tiny_label_probabilities_still_give_the_expected_score(server, feel_rubric, tiny_tokenizer):
    judge = build_judge(feel_rubric, tiny_tokenizer, external(server.url("logprobs800"), scoring="logprobs"))
    verdicts = judge.score(None, PROMPTS, COMPLETIONS, None)  # type: ignore[arg-type]
    assert verdicts.scores.eq(3.0).all()  # e^-800 on each label: uniform in log space, not 0/0
    assert judge.last_metrics["judge/external/unparsed"] == 0


def test_an_echoed_key_is_redacted_from_the_log(server, feel_rubric, tiny_tokenizer, monkeypatch, caplog, capsys):
    monkeypatch.setenv(KEY_ENV, KEY)
    cfg = external(server.url("echo401"), api_key_env=KEY_ENV, scoring="generate")
    with redacted_output():  # as every command runs
        logged = rewards_of(cfg, feel_rubric, tiny_tokenizer)
        print(f"a print that carries the key: {KEY}", file=sys.stderr)
    assert logged["judge/external/failed"] == 6
    captured = capsys.readouterr()
    assert "HTTP 401" in caplog.text and REDACTED in caplog.text
    for text in (caplog.text, captured.out, captured.err):
        assert KEY not in text and KEY[:12] not in text, text  # not even the start of a key cut short


def run_hmx(*argv: str, env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "hmx.cli", *argv], capture_output=True, text=True, env=env, timeout=900
    )
    return done.returncode, done.stdout + done.stderr


def files_text(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", errors="replace") for p in root.rglob("*") if p.is_file())


def test_a_planted_key_never_appears_in_any_output_or_file(server, tmp_path, cache_dir):
    """hmx train and hmx eval with an external judge that echoes the key in every 401."""
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"}
    env.update({KEY_ENV: KEY, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[2]), env.get("PYTHONPATH", "")])
    judge = [
        "judge=external",
        f"judge.external.base_url={server.url('echo401')}",
        "judge.external.model=m",
        f"judge.external.api_key_env={KEY_ENV}",
        "judge.external.retries=0",
    ]
    runs = tmp_path / "runs"
    code, train_out = run_hmx(
        "train",
        f"paths.runs_dir={runs}",
        f"paths.cache_dir={cache_dir}",
        "logger=wandb",  # offline: W&B's config, console log and run file are searched too
        "logger.mode=offline",
        "debug=smoke",
        "run_name=leak",
        "trainer.max_steps=2",
        "trainer.per_device_train_batch_size=2",
        "trainer.num_generations=2",
        *judge,
        env=env,
    )
    assert code == 0, train_out[-3000:]
    assert "HTTP 401" in train_out and REDACTED in train_out  # the server's echo was logged, redacted
    assert any(p.suffix == ".wandb" for p in (runs / "leak" / "wandb").rglob("*"))
    eval_out_dir = tmp_path / "eval"
    eval_code, eval_out = run_hmx(
        "eval",
        f"run_dir={runs / 'leak'}",
        f"output_dir={eval_out_dir}",
        f"paths.cache_dir={cache_dir}",
        "suite.benchmarks=[]",
        "suite.sycophancy.enabled=false",
        "suite.expression.limit=2",
        "suite.expression.max_new_tokens=4",
        *judge,
        env=env,
    )
    # before: exit 0, with blank scores labelled expression/self/*
    assert eval_code == 2 and "'judge.external.base_url'" in eval_out and "scored none" in eval_out, eval_out[-3000:]
    assert "Traceback" not in eval_out and not (eval_out_dir / "results.json").exists()
    everything = train_out + eval_out + files_text(runs) + (files_text(eval_out_dir) if eval_out_dir.exists() else "")
    assert KEY not in everything and KEY[:12] not in everything


def test_eval_with_an_unreachable_external_judge_exits_2_before_anything_runs(tmp_path, cache_dir, hmx_fails):
    # before: exit 0 after the whole suite, with blank scores labelled expression/self/*
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    out = tmp_path / "eval"
    argv = ["eval", f"paths.cache_dir={cache_dir}", f"output_dir={out}", "judge=external", "judge.external.model=m"]
    err = hmx_fails(*argv, f"judge.external.base_url=http://127.0.0.1:{port}/v1")
    assert "'judge.external.base_url': nothing answers" in err and not out.exists()

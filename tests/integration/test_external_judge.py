"""The external judge (``judge.source=external``) against a real OpenAI-compatible server on CPU.

The server is ``transformers serve`` running the tiny model, started once for the module on a free
port. A random tiny model never writes a verdict by itself, so the served copy's
``generation_config.json`` carries a ``sequence_bias`` that makes its greedy reply ``Score: 3``: the
server really generates it, token by token, and the judge parses what comes back.
``transformers serve`` returns no logprobs (it ignores the field), so ``scoring=auto`` falling back to
generate mode is tested here; the logprob arithmetic is tested on the Chat Completions shape that
vLLM returns (tests/unit/test_external_judge.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import torch

from hmx import cli
from hmx.config import ExternalJudgeConfig, JudgeConfig
from hmx.judge.factory import build_judge
from hmx.judge.rewards import SelfJudgeRewards

READY_SECONDS = 180
PROMPTS = ["I got the job!", "Can you help me?"]
COMPLETIONS = ["I'm so glad for you; I feel proud.", "Sure."]


@dataclass
class Server:
    url: str  # the OpenAI base URL, .../v1
    model: str  # the served model's name
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def verdict_bias(tokenizer, verdict: str) -> list:
    """``sequence_bias`` entries that make greedy decoding write ``verdict`` then end the turn."""
    ids = [*tokenizer(verdict, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    return [[[ids[0]], 100.0], *[[[a, b], 200.0] for a, b in zip(ids, ids[1:], strict=False)]]


@pytest.fixture(scope="module")
def server(tiny_dir: Path, tiny_tokenizer, tmp_path_factory) -> Iterator[Server]:
    """``transformers serve`` on the tiny model (biased to write ``Score: 3``), ready, and killed at teardown."""
    model_dir = tmp_path_factory.mktemp("served") / "tiny-judge"
    shutil.copytree(tiny_dir, model_dir)
    config_file = model_dir / "generation_config.json"
    config = json.loads(config_file.read_text())
    config["sequence_bias"] = verdict_bias(tiny_tokenizer, "Score: 3")
    config_file.write_text(json.dumps(config))
    port = free_port()
    command = [str(Path(sys.executable).with_name("transformers")), "serve", str(model_dir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--dtype", "float32"]
    log = (model_dir.parent / "server.log").open("w")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + READY_SECONDS
    try:
        while True:
            if process.poll() is not None:
                tail = (model_dir.parent / "server.log").read_text()[-2000:]
                pytest.fail(f"transformers serve exited {process.returncode}: {tail}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve not ready after {READY_SECONDS} s")
            time.sleep(0.5)
        yield Server(f"http://127.0.0.1:{port}/v1", str(model_dir), process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def external(server: Server, **fields) -> JudgeConfig:
    settings = {"base_url": server.url, "model": server.model, "scoring": "generate", **fields}
    return JudgeConfig(source="external", max_rationale_tokens=4, external=ExternalJudgeConfig(**settings))


def test_generate_scoring_through_the_server(server, feel_rubric, tiny_tokenizer):
    judge = build_judge(feel_rubric, tiny_tokenizer, external(server))
    verdicts = judge.score(None, PROMPTS, COMPLETIONS, None)  # type: ignore[arg-type]
    assert verdicts.scores.shape == (2, 3)
    assert verdicts.scores.eq(3.0).all()  # the server wrote "Score: 3" every time, and it parsed
    assert all(text is not None and text.strip().endswith("Score: 3") for row in judge.raw for text in row)
    assert verdicts.label_probs[0][0] == [0.0, 0.0, 1.0, 0.0, 0.0] and verdicts.label_mass.eq(1.0).all()
    assert judge.last_metrics["judge/external/failed"] == 0 and judge.last_metrics["judge/external/unparsed"] == 0


def test_auto_scoring_falls_back_to_generate_when_no_logprobs_come_back(server, feel_rubric, tiny_tokenizer):
    judge = build_judge(feel_rubric, tiny_tokenizer, external(server, scoring="auto"))
    verdicts = judge.score(None, PROMPTS[:1], COMPLETIONS[:1], None)  # type: ignore[arg-type]
    assert judge.scoring == "generate" and judge.last_metrics["judge/external/logprobs"] == 0.0
    assert verdicts.scores.eq(3.0).all()


def test_logprob_scoring_on_a_server_without_logprobs_is_a_counted_fault(server, feel_rubric, tiny_tokenizer):
    judge = build_judge(feel_rubric, tiny_tokenizer, external(server, scoring="logprobs"))
    verdicts = judge.score(None, PROMPTS, COMPLETIONS, None)  # type: ignore[arg-type]
    assert verdicts.scores.isnan().all() and judge.last_metrics["judge/external/unparsed"] == 6


def test_timeout_and_unreachable_server_give_neutral_rewards(server, feel_rubric, tiny_tokenizer):
    dead = Server(f"http://127.0.0.1:{free_port()}/v1", server.model, server.process)  # nothing listens there
    for cfg in (external(dead, retries=2, backoff=0.01), external(server, timeout=0.001, retries=1, backoff=0.01)):
        judge = build_judge(feel_rubric, tiny_tokenizer, cfg)
        rewards = SelfJudgeRewards(judge)
        rewards.bind(torch.nn.Identity(), torch.device("cpu"))  # the endpoint judges: the model is unused
        logged: dict[str, float] = {}
        for reward in rewards.reward_functions():
            values = reward(PROMPTS, COMPLETIONS, log_metric=logged.__setitem__)
            assert values == [None, None]  # every completion of its group failed: no advantage either way
        retries = cfg.external.retries
        assert logged["judge/invalid"] == 6 and logged["judge/external/failed"] == 6
        assert logged["judge/external/retries"] == 6 * retries
    assert rewards.invalid_total == 6


def test_bad_external_config_exits_2_naming_the_field(tmp_path, cache_dir, capsys, monkeypatch):
    monkeypatch.delenv("HMX_TEST_JUDGE_KEY", raising=False)
    runs = tmp_path / "runs"
    base = ["train", f"paths.runs_dir={runs}", f"paths.cache_dir={cache_dir}", "logger=none", "judge=external"]
    url, model = "judge.external.base_url=http://127.0.0.1:9/v1", "judge.external.model=m"
    cases = [
        ([], "judge.external.base_url"),
        (["judge.external.base_url=127.0.0.1:9", model], "judge.external.base_url"),
        ([url], "judge.external.model"),
        ([url, model, "judge.external.api_key_env=HMX_TEST_JUDGE_KEY"], "judge.external.api_key_env"),
        ([url, model, "judge.external.scoring=sample"], "judge.external.scoring"),
        ([url, model, "judge.drift_steps=2"], "judge.drift_steps"),
    ]
    for overrides, field in cases:
        with pytest.raises(SystemExit) as exit_info:
            cli.main([*base, *overrides])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and f"'{field}'" in err and "Traceback" not in err, err
        assert not runs.exists() or not any(runs.iterdir())


def test_training_with_the_external_judge_and_the_panel_logs_their_metrics(server, make_cfg, monkeypatch):
    from hmx.train import run

    monkeypatch.setenv("HMX_TEST_JUDGE_KEY", "sk-test-not-a-secret-7c1f")
    cfg = make_cfg(
        "debug=smoke",
        "logger=none",
        "trainer.max_steps=2",
        "trainer.per_device_train_batch_size=4",
        "trainer.num_generations=2",
        "run_name=external",
        "judge=external",
        "judge.panel=true",
        "judge.max_rationale_tokens=4",
        f"judge.external.base_url={server.url}",
        f"judge.external.model={server.model}",
        "judge.external.scoring=generate",
        "judge.external.api_key_env=HMX_TEST_JUDGE_KEY",
    )
    run_dir = run(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = [row for row in rows if "judge/external/failed" in row]
    assert logged and all(row["judge/external/failed"] == 0 for row in logged)
    assert all(row["rewards/feelings/mean"] == 3.0 for row in logged)  # the reward is the external judge's
    panel = [key for key in logged[0] if key.startswith("judge/panel/")]
    assert sorted(panel) == sorted(
        f"judge/panel/{c}/{pair}"
        for c in ("feelings", "intentions", "self_awareness")
        for pair in ("self_base", "self_external", "base_external")
    )
    for row in logged:  # None in the log where rho is undefined: the external judge's scores are all 3
        assert row["judge/panel/feelings/self_external"] is None
        rho = row["judge/panel/feelings/self_base"]
        assert rho is None or -1.0 <= rho <= 1.0
    text = "".join(
        p.read_text(errors="ignore")
        for p in run_dir.rglob("*")
        if p.is_file() and p.suffix in {".yaml", ".json", ".jsonl", ".txt", ".log"}
    )
    assert "sk-test-not-a-secret-7c1f" not in text and "HMX_TEST_JUDGE_KEY" in text  # the name, never the key

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

from hmx.config import ExternalJudgeConfig, JudgeConfig
from hmx.judge.registry import build_judge
from hmx.rewards.self_judge import SelfJudgeRewards

READY_SECONDS = 180
PROMPTS = ["I got the job!", "Can you help me?"]
COMPLETIONS = ["I'm so glad for you; I feel proud.", "Sure."]


@dataclass
class Server:
    url: str  # the OpenAI base URL, .../v1
    model: str  # the served model's name


@dataclass
class Servers:
    generate: Server  # transformers serve: no logprobs
    logprobs: Server  # tests/integration/logprob_server.py


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def verdict_bias(tokenizer, verdict: str) -> list:
    """``sequence_bias`` entries that make greedy decoding write ``verdict`` then end the turn."""
    ids = [*tokenizer(verdict, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    return [[[ids[0]], 100.0], *[[[a, b], 200.0] for a, b in zip(ids, ids[1:], strict=False)]]


def wait_ready(process: subprocess.Popen, port: int, log: Path, deadline: float) -> None:
    while True:
        if process.poll() is not None:
            pytest.fail(f"{process.args} exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{process.args} not ready after {READY_SECONDS} s: {log.read_text()[-2000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def servers(tiny_dir: Path, tiny_tokenizer, tmp_path_factory) -> Iterator[Servers]:
    """Both servers on free ports, started together, ready within READY_SECONDS, killed at teardown."""
    root = tmp_path_factory.mktemp("served")
    biased = root / "tiny-judge"  # for transformers serve: biased to write "Score: 3"
    shutil.copytree(tiny_dir, biased)
    config = json.loads((biased / "generation_config.json").read_text())
    config["sequence_bias"] = verdict_bias(tiny_tokenizer, "Score: 3")
    (biased / "generation_config.json").write_text(json.dumps(config))
    ports = free_port(), free_port()
    commands = [
        [
            str(Path(sys.executable).with_name("transformers")),
            "serve",
            str(biased),
            "--host",
            "127.0.0.1",
            "--port",
            str(ports[0]),
            "--device",
            "cpu",
            "--dtype",
            "float32",
        ],
        [sys.executable, str(Path(__file__).with_name("logprob_server.py")), str(tiny_dir), "--port", str(ports[1])],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    logs = [root / "transformers-serve.log", root / "logprob-server.log"]
    processes = []
    try:
        for command, log in zip(commands, logs, strict=True):
            with log.open("w") as handle:
                processes.append(subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env))
        deadline = time.monotonic() + READY_SECONDS
        for process, port, log in zip(processes, ports, logs, strict=True):
            wait_ready(process, port, log, deadline)
        yield Servers(
            Server(f"http://127.0.0.1:{ports[0]}/v1", str(biased)),
            Server(f"http://127.0.0.1:{ports[1]}/v1", str(tiny_dir)),
        )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def server(servers: Servers) -> Server:
    return servers.generate


def external(server: Server, **fields) -> JudgeConfig:
    settings = {"base_url": server.url, "model": server.model, "scoring": "generate", **fields}
    rationale = {"generate": {"max_rationale_tokens": 4}}
    return JudgeConfig(source="external", nodes=rationale, external=ExternalJudgeConfig(**settings))


def test_generate_scoring_through_the_server(server, feel_rubric, tiny_tokenizer):
    thinking_off = {"chat_template_kwargs": {"enable_thinking": False}}  # a field transformers serve knows
    judge = build_judge(feel_rubric, tiny_tokenizer, external(server, extra_body=thinking_off))
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


def test_logprob_scoring_is_the_expected_score_of_the_served_models_labels(
    servers, feel_rubric, tiny_tokenizer, tiny_model
):
    top = tiny_tokenizer.vocab_size + 8  # every token: the server's distribution is the model's, exactly
    judge = build_judge(feel_rubric, tiny_tokenizer, external(servers.logprobs, scoring="auto", top_logprobs=top))
    verdicts = judge.score(None, PROMPTS, COMPLETIONS, None)  # type: ignore[arg-type]
    assert judge.scoring == "logprobs" and judge.last_metrics["judge/external/logprobs"] == 1.0
    for i, (prompt, completion) in enumerate(zip(PROMPTS, COMPLETIONS, strict=True)):
        for j, criterion in enumerate(feel_rubric.criteria):
            text = tiny_tokenizer.apply_chat_template(
                [{"role": "user", "content": judge.message(prompt, completion, criterion, "logprobs")}],
                tokenize=False,
                add_generation_prompt=True,
            )
            ids = tiny_tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
            with torch.no_grad():
                logprobs = torch.log_softmax(tiny_model(input_ids=ids).logits[0, -1].float(), dim=-1)
            label_ids = [tiny_tokenizer.convert_tokens_to_ids(label) for label in criterion.labels]
            probs = logprobs[label_ids].exp()
            expected = float(probs @ torch.tensor(criterion.values) / probs.sum())
            assert verdicts.scores[i, j].item() == pytest.approx(expected, abs=1e-4)
            assert verdicts.label_mass[i, j].item() == pytest.approx(float(probs.sum()), rel=1e-3)
    assert verdicts.scores.min() >= 1.0 and verdicts.scores.max() <= 5.0 and verdicts.scores.std() > 0


def test_logprob_scoring_on_a_server_without_logprobs_is_a_counted_fault(server, feel_rubric, tiny_tokenizer):
    judge = build_judge(feel_rubric, tiny_tokenizer, external(server, scoring="logprobs"))
    verdicts = judge.score(None, PROMPTS, COMPLETIONS, None)  # type: ignore[arg-type]
    assert verdicts.scores.isnan().all() and judge.last_metrics["judge/external/unparsed"] == 6


def test_timeout_and_unreachable_server_give_neutral_rewards(server, feel_rubric, tiny_tokenizer):
    dead = Server(f"http://127.0.0.1:{free_port()}/v1", server.model)  # nothing listens there
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


def test_a_request_the_server_refuses_is_not_retried(server, feel_rubric, tiny_tokenizer):
    cfg = external(server, extra_body={"hmx_unknown_field": 1}, retries=3)  # transformers serve: 422
    judge = build_judge(feel_rubric, tiny_tokenizer, cfg)
    verdicts = judge.score(None, PROMPTS, COMPLETIONS, None)  # type: ignore[arg-type]
    assert verdicts.scores.isnan().all()
    assert judge.last_metrics["judge/external/failed"] == 6 and judge.last_metrics["judge/external/retries"] == 0


def test_bad_external_config_exits_2_naming_the_field(tmp_path, cache_dir, hmx_fails, monkeypatch):
    monkeypatch.delenv("HMX_TEST_JUDGE_KEY", raising=False)
    runs = tmp_path / "runs"
    base = [
        "train",
        "debug=tiny",
        f"paths.runs_dir={runs}",
        f"paths.cache_dir={cache_dir}",
        "logger=none",
        "judge=external",
    ]
    url, model = "judge.external.base_url=http://127.0.0.1:9/v1", "judge.external.model=m"
    cases = [  # each field's check: tests/unit/test_external_judge.py
        ([], "judge.external.base_url"),
        ([url, model, "judge.external.api_key_env=HMX_TEST_JUDGE_KEY"], "judge.external.api_key_env"),
        ([url, model, "judge.drift_steps=2"], "judge.drift_steps"),
        ([url, model], "judge.external.base_url"),  # nothing answers at port 9: refused at start-up
    ]
    for overrides, field in cases:
        err = hmx_fails(*base, *overrides)
        assert f"'{field}'" in err, err
        assert not runs.exists() or not any(runs.iterdir())


def test_training_with_the_external_judge_and_the_panel_logs_their_metrics(servers, make_cfg, monkeypatch):
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
        f"judge.external.base_url={servers.logprobs.url}",
        f"judge.external.model={servers.logprobs.model}",
        "judge.external.scoring=logprobs",
        "judge.external.top_logprobs=2000",  # a random model rarely puts a label in its top 20
        "judge.external.api_key_env=HMX_TEST_JUDGE_KEY",
    )
    run_dir = run(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = [row for row in rows if "judge/external/failed" in row]
    assert logged and all(row["judge/external/failed"] == 0 and row["judge/invalid"] == 0 for row in logged)
    assert all(row["judge/external/logprobs"] == 1.0 and 1 <= row["rewards/feelings/mean"] <= 5 for row in logged)
    panel = [key for key in logged[0] if key.startswith("judge/panel/")]
    assert sorted(panel) == sorted(
        f"judge/panel/{c}/{pair}"
        for c in ("feelings", "intentions", "self_awareness")
        for pair in ("self_base", "self_external", "base_external")
    )
    for row in logged:  # Spearman's rho, or None in the log where it is undefined (a constant side)
        assert all(row[key] is None or -1.0 <= row[key] <= 1.0 for key in panel)
    assert any(row["judge/panel/feelings/self_external"] is not None for row in logged)
    text = "".join(
        p.read_text(errors="ignore")
        for p in run_dir.rglob("*")
        if p.is_file() and p.suffix in {".yaml", ".json", ".jsonl", ".txt", ".log"}
    )
    assert "sk-test-not-a-secret-7c1f" not in text and "HMX_TEST_JUDGE_KEY" in text  # the name, never the key


def test_a_panel_checks_its_probe_against_the_model_before_the_run_exists(servers, tmp_path, cache_dir, hmx_fails):
    from hmx.resources import RUBRICS_DIR

    runs, probe = tmp_path / "runs", RUBRICS_DIR / "probes" / "hmx_feel.smollm2-135m.safetensors"  # run's model: tiny
    overrides = [f"paths.runs_dir={runs}", f"paths.cache_dir={cache_dir}", "debug=smoke", "logger=none"]
    overrides += ["judge=external", "judge.source=self", "judge.mode=probe", f"judge.probe={probe}", "judge.panel=true"]
    overrides += [f"judge.external.model={servers.logprobs.model}"]
    err = hmx_fails("train", *overrides, f"judge.external.base_url={servers.logprobs.url}")
    assert "fitted on 'smollm2-135m'" in err, err
    assert not runs.exists() or not any(runs.iterdir())

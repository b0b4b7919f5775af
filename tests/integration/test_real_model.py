"""Every hmx command on a real model: SmolLM2-135M-Instruct (Llama architecture, a real tokenizer and chat
template), from the packaged GGUF converted once (``model=smollm2-135m``; no hub).

Short runs, so that the whole module stays within a few minutes on 2 cores: a forward run that is also
the uninterrupted twin of a SIGKILLed-and-resumed run, a reverse run under a system prompt, the judge's
packed path against its row path, ``hmx rubric show/score``, ``hmx eval`` of the base and of a run,
``hmx compare``, ``hmx chat --prompt``, ``hmx merge`` and a 2-rank ZeRO-3 run. The commands run in this
process (the ``hmx`` fixture of tests/conftest.py: the console script's entry, without a second start-up of
torch and transformers); processes where the process is the point: the SIGKILLed run and its resume, and the 2 ranks.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from safetensors.torch import load_file

from hmx.checkpoints import is_complete
from hmx.config import JudgeConfig, typed_node
from hmx.evaluation.tasks.datasets import data_root
from hmx.judge.validity.records import CheckRecords, run_keys
from hmx.models import load_model, load_tokenizer, model_config
from hmx.packaged import build_packaged, packaged_file
from hmx.resources import CONF_DIR, rubric_path
from hmx.rewards.audit import audit_pair_source
from hmx.train import grpo_args

SPEC = model_config("smollm2-135m").packaged
assert SPEC is not None
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        packaged_file(SPEC) is None and not os.environ.get("CI"),
        reason=f"the packaged SmolLM2 is not installed ({SPEC.install}); CI installs it (Makefile)",
    ),
]

STEPS = 2
SMALL_RUN = [  # 2 prompts x 2 completions of up to 12 tokens per step
    "model=smollm2-135m",
    "judge=logprob",  # this test's subject is the run's lifecycle, not the probe (the CPU default's judge)
    "trainer=tiny",
    "logger=none",
    f"trainer.max_steps={STEPS}",
    "trainer.per_device_train_batch_size=4",
    "trainer.num_generations=2",
    "trainer.max_completion_length=12",
    "trainer.learning_rate=1e-3",
    "trainer.logging_steps=1",
    "trainer.save_steps=1",
    "trainer.log_completions=true",
    "before_after=0",  # every run's before/after answers and reward-hacking audit: tested on the tiny model
    "audit.steps=0",  # (test_before_after.py, test_audit_in_training.py); here they would be most of a step
    "audit.minimal_steps=0",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}  # runs side by side
# the forward twins run side by side on one thread each, and the resume must repeat their arithmetic: one thread too
EVAL = [  # hmx eval's small suite on the real model
    "model=smollm2-135m",
    "suite.benchmarks=[truthfulqa_mc1,bbq]",  # two multiple-choice tasks
    "suite.limit=3",
    "suite.batch_size=4",
    "suite.sycophancy.limit=1",
    "suite.expression.limit=2",
    "suite.expression.max_new_tokens=12",
]


def hmx_ok(hmx, *args: str) -> str:
    """``hmx ARGS`` in this process (tests/conftest.py); it must succeed; returns its stdout."""
    code, out, err = hmx(*args)
    assert code == 0, out[-2000:] + err[-4000:]
    return out


@pytest.fixture(scope="module")
def smol_dir(cache_dir: Path) -> Path:
    """The converted copy, built once per session in the test cache."""
    converted = build_packaged(SPEC, cache_dir)
    assert converted is not None, SPEC.install
    return converted


@pytest.fixture(scope="module")
def forward_runs(tmp_path_factory, cache_dir: Path, smol_dir: Path) -> Path:
    """A forward run, and its twin SIGKILLed after its first checkpoint, then resumed (both ``hmx train``)."""
    runs = tmp_path_factory.mktemp("smol-runs")
    common = ["train", *SMALL_RUN, f"paths.runs_dir={runs}", f"paths.cache_dir={cache_dir}"]
    command = [sys.executable, "-m", "hmx.cli", *common]
    with (runs.parent / "straight.log").open("w") as log:
        straight = subprocess.Popen([*command, "run_name=straight"], stdout=log, stderr=log, env=ENV)
        killed = subprocess.Popen(
            [*command, "run_name=killed"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
        )
        try:
            while killed.poll() is None and not any(is_complete(p) for p in (runs / "killed").glob("checkpoint-*")):
                time.sleep(0.01)
            killed.send_signal(signal.SIGKILL)
        finally:
            killed.kill()
        assert killed.wait() == -signal.SIGKILL and not (runs / "killed" / "adapter").exists()
        assert straight.wait(timeout=600) == 0, (runs.parent / "straight.log").read_text()[-3000:]
    resumed = subprocess.run([*command, "run_name=killed", "resume=true"], capture_output=True, text=True, env=ENV)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-4000:]
    return runs


def completions(run_dir: Path) -> pd.DataFrame:
    return pd.concat(pd.read_parquet(path) for path in sorted((run_dir / "completions").glob("*.parquet")))


def test_forward_run_trains_and_logs_readable_completions(forward_runs):
    run_dir = forward_runs / "straight"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [row for row in rows if "reward" in row]
    assert [row["step"] for row in steps] == list(range(1, STEPS + 1))
    for row in steps:  # a real model puts real mass on the score labels; a random one spreads it
        assert row["judge/label_mass"] > 0.3
        assert 1.0 <= row["judge/feelings/score"] <= 5.0
    assert any(row.get("grad_norm", 0) > 0 for row in steps)
    table = completions(run_dir)
    texts = [row[-1]["content"] for row in table["completion"]]
    words = [re.findall(r"[A-Za-z]{2,}", text) for text in texts]
    assert sum(len(w) >= 3 for w in words) >= len(texts) // 2, texts  # English words, not byte noise
    assert table[["feelings", "intentions", "self_awareness"]].notna().all().all()


def test_sigkilled_real_model_run_resumes_to_the_same_adapter(forward_runs):
    straight = load_file(forward_runs / "straight" / "adapter" / "adapter_model.safetensors")
    resumed = load_file(forward_runs / "killed" / "adapter" / "adapter_model.safetensors")
    assert straight.keys() == resumed.keys()
    assert max(float((straight[k] - resumed[k]).abs().max()) for k in straight) <= 1e-6
    assert any(float(v.abs().sum()) > 0 for k, v in straight.items() if "lora_B" in k)


def test_reverse_run_under_a_system_prompt_flips_the_reward(tmp_path, cache_dir, smol_dir):
    from hmx.train import run

    overrides = [*SMALL_RUN, "trainer.max_steps=1", "rubric.direction=reverse", "run_name=reverse"]
    overrides += ["+data.system_prompt='You are a warm, candid assistant.'"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", [f"paths.runs_dir={tmp_path}", f"paths.cache_dir={cache_dir}", *overrides])
    run_dir = run(cfg)
    (row,) = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if '"reward"' in line]
    for name in ("feelings", "intentions", "self_awareness"):  # reward = 1 + 5 - raw score
        assert row[f"rewards/{name}/mean"] == pytest.approx(6.0 - row[f"judge/{name}/score"], abs=1e-4)
    prompt = completions(run_dir)["prompt"].iloc[0]
    assert prompt[0]["role"] == "system" and prompt[0]["content"] == "You are a warm, candid assistant."


def test_packed_judge_equals_one_row_per_criterion_on_llama(smol_dir, feel_rubric):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hmx.judge.modes.logprob import LogprobJudge

    model = AutoModelForCausalLM.from_pretrained(smol_dir, attn_implementation="sdpa").eval()
    tokenizer = AutoTokenizer.from_pretrained(smol_dir)
    prompts = ["I got the job!", "Can you explain recursion?\nBriefly."]
    replies = ["I'm so happy for you, I feel a real rush of joy <|im_end|> reading this!", "A function calls itself."]
    rubric = dataclasses.replace(feel_rubric, criteria=feel_rubric.criteria[:2])  # 4 rows of ~500 tokens
    judge = LogprobJudge(rubric, tokenizer, JudgeConfig(batch_size=4))
    texts = judge.texts(prompts, replies)
    # GPT-2's pre-tokenizer joins a newline to the indent after it, so line-aligned pieces can differ from
    # whole rows: the start-up probe sees it and the judge tokenizes whole rows (cheap next to the forward)
    assert not judge.rows.piecewise and judge.rows(texts) == judge.rows.whole(texts)
    assert "<|im_end|> reading" not in texts[0]  # a special token inside the reply is defused
    with torch.no_grad():
        rows = judge.last_logits(model, texts, torch.device("cpu"))
        packed = judge.packed_last_logits(model, texts, torch.device("cpu"))
    assert judge.shares_prefix(model)
    assert (packed - rows).abs().max() < 2e-3  # float32, 30 layers: the same logits up to summation order
    verdicts = judge.verdicts(packed.view(2, 2, -1))
    assert ((verdicts.scores >= 1) & (verdicts.scores <= 5)).all() and (verdicts.label_mass > 0.3).all()


def test_rubric_show_and_score_on_the_real_model(cache_dir, smol_dir, hmx):
    shown = hmx_ok(hmx, "rubric", "show", "hmx_feel", "--criterion", "feelings")
    assert "feelings" in shown and "<completion>" in shown
    args = ["rubric", "score", "--rubric", "hmx_feel", "--model", "smollm2-135m", "--cache-dir", str(cache_dir)]
    scored = json.loads(
        hmx_ok(hmx, *args, "--prompt", "I got the job!", "--completion", "I'm thrilled for you!", "--json")
    )
    assert [row["criterion"] for row in scored] == ["feelings", "intentions", "self_awareness"]
    for row in scored:
        assert (
            1.0 <= row["score"] <= 5.0 and row["label_mass"] > 0.3 and sum(row["probs"]) == pytest.approx(1.0, abs=1e-4)
        )


def test_shipped_probe_judges_the_criterion_asked_on_the_real_model(cache_dir, smol_dir, hmx):
    """The shipped SmolLM2 head on the criterion-swapped pairs (never fitted on): both replies are top replies,
    for different criteria; first-person and length heuristics are at or below chance there."""
    from hmx.resources import RUBRICS_DIR

    args = ["rubric", "validate", "--rubric", "hmx_feel", "--model", "smollm2-135m", "--cache-dir", str(cache_dir)]
    pairs = ["--pairs", str(RUBRICS_DIR / "hmx_feel.shift.pairs.jsonl"), "--split", "swap"]
    probe = ["--mode", "probe", "--probe", str(RUBRICS_DIR / "probes" / "hmx_feel.smollm2-135m.safetensors")]
    result = json.loads(hmx_ok(hmx, *args, *pairs, *probe, "--json"))
    overall = result["overall"]
    assert overall["pairs"] == 33 and overall["accuracy"] >= 0.8  # measured 0.909 (docs/rubrics.md)
    assert overall["accuracy"] > max(overall["first_person"], overall["length"]) + 0.3
    assert all(row["accuracy"] >= 0.7 for row in result["criteria"])


@pytest.mark.skipif(data_root(None) is None, reason="../shared/data is not next to this checkout")
def test_eval_of_base_and_run_then_compare_and_chat(forward_runs, cache_dir, smol_dir, tmp_path, hmx):
    """hmx eval on the real model and on a run of it (its adapter), compared, then chatted with. That hmx eval's
    benchmark figures equal lm-eval's own command line is shown on the tiny model, every task (test_eval.py)."""
    base_out, run_dir = tmp_path / "base", forward_runs / "straight"
    hmx_ok(hmx, "eval", *EVAL, f"paths.cache_dir={cache_dir}", f"output_dir={base_out}")
    hmx_ok(
        hmx, "eval", *EVAL, f"paths.cache_dir={cache_dir}", f"run_dir={run_dir}", "suite.benchmarks=[truthfulqa_mc1]"
    )
    base = json.loads((base_out / "results.json").read_text())
    assert base["samples"]["truthfulqa_mc1"] == 3 and base["metrics"]["expression/self/overall"]["value"] >= 1.0
    for bench in ("truthfulqa_mc1", "bbq"):  # lm-eval's figures, finite, for each benchmark asked
        figures = base["details"]["lm_eval"][bench]
        assert figures and all(math.isfinite(value) for value in figures.values()), figures

    hmx_ok(hmx, "compare", str(base_out), str(run_dir), "--out", str(tmp_path / "cmp"), "--wandb", "off")
    report = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "truthfulqa_mc1/acc" in report and "expression/self/overall" in report

    chat = hmx_ok(hmx, "chat", str(run_dir), "--prompt", "What is the capital of France?", "--max-new-tokens", "16")
    assert re.search(r"[A-Za-z]{3,}", chat), chat


def test_merged_weights_give_the_adapter_models_logits(forward_runs, tmp_path, hmx):
    from transformers import AutoModelForCausalLM

    from hmx.runs import load_adapter_model, locate_run

    run_dir, out = forward_runs / "straight", tmp_path / "merged"
    hmx_ok(hmx, "merge", str(run_dir), "--out", str(out))
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    adapted = load_adapter_model(locate_run(run_dir))
    ids = torch.tensor([[1, 9690, 198, 19556, 1848, 314, 346, 30, 2]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-4)


def test_zero3_two_ranks_train_the_real_model(tmp_path, cache_dir, smol_dir):
    from test_multirank import check_ranks, check_run_dir, launch

    overrides = [*SMALL_RUN, "trainer.max_steps=1", "trainer.per_device_train_batch_size=2"]  # the last value wins
    run_dir, records = launch("zero3", tmp_path, cache_dir, *overrides, modes="logprob")  # others: the tiny job's
    check_ranks(records, "DEEPSPEED", 3, others=())
    assert all(record["local_numel"] < record["full_numel"] / 2 for record in records)  # really sharded
    check_run_dir(run_dir)


def test_the_shipped_record_applies_to_make_train(make_cfg, tmp_path, smol_dir):
    """`make train`'s two checks are in rubrics/records/judge_checks.yaml, so it reuses them: a change to its model,
    judge, head, rubric or pairs fails here, and the fix is to record the new judge (docs/training.md, "Recorded
    checks")."""
    cfg = make_cfg()  # conf/train.yaml as `make train` composes it
    model_cfg, judge_cfg, rubric_cfg = typed_node(cfg, "model"), typed_node(cfg, "judge"), typed_node(cfg, "rubric")
    audit_cfg = typed_node(cfg, "audit")
    args = grpo_args(cfg, tmp_path, [], [1.0])
    rubric_files = [str(rubric_path(name)) for name in [rubric_cfg.path, *rubric_cfg.extra]]
    source = audit_pair_source(audit_cfg, rubric_path(rubric_cfg.path))
    startup, audit = run_keys(judge_cfg, rubric_files, rubric_cfg.direction, model_cfg.name_or_path, source, "bf16")
    assert args.bf16 and startup is not None and audit is not None  # the precision make train's trainer runs at
    model = load_model(model_cfg, cfg.paths.cache_dir)
    shipped = CheckRecords(model, load_tokenizer(model_cfg, cfg.paths.cache_dir), [startup, audit])
    cpu = torch.device("cpu")
    assert shipped.find(startup, cpu) is not None, "make train's start-up check is not recorded: record it"
    assert shipped.find(audit, cpu) is not None, "make train's step-0 audit pass is not recorded: record it"

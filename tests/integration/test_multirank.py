"""Real multi-rank training on CPU: 2 processes under DDP, DeepSpeed ZeRO-2 and ZeRO-3 (gloo).

Each launch is ``accelerate launch --config_file launch/accelerate/<layout>.yaml --num_processes 2``
of the real ``hmx train`` entry point (tests/integration/multirank_job.py adds an observer that
records what each rank saw). Marked ``slow`` but part of the default suite.

Equivalence: generation is greedy in the DDP run, so the reward curve depends on
the data order, the sharding of the global batch, generation under a different padding and
the judge's batching only, and must match a 1-process run with the same global batch. Under
sampling it cannot match exactly: TRL seeds each rank differently (``set_seed(seed,
device_specific=True)``, so that ranks do not draw the same completions), so a 2-rank run draws
other completions than a 1-process run. ZeRO-2 is not compared: DeepSpeed's CPU path differs
from plain torch at float level, enough to flip a near-tie greedy token of the random tiny
model (seen: one completion diverged at its 11th token), after which the curves part.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hmx.judge.modes.logprob import forward_calls
from hmx.runs import load_adapter_model, load_run_tokenizer, locate_run
from hmx.train import run

REPO = Path(__file__).resolve().parents[2]
JOB = Path(__file__).with_name("multirank_job.py")
GREEDY = "+trainer.generation_kwargs={do_sample:false}"
STEPS = 3
OTHER_MODES = ("binary", "contrastive", "budget")  # the observer's default (tests/integration/multirank_job.py)
REWARD_TOLERANCE = 5e-3  # absolute, on a total reward of about 13; measured: at most 1.4e-3 (docs/scaling.md)

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch(layout: str, tmp_path: Path, cache_dir: Path, *overrides: str, modes: str = "") -> tuple[Path, list[dict]]:
    """2 CPU ranks of ``hmx train`` under launch/accelerate/<layout>.yaml; returns the run dir and per-rank probes.

    ``modes``: the judge modes the observer scores with at the end (comma-separated; empty: every one)."""
    probes = tmp_path / f"probe-{layout}"
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO / "launch" / "accelerate" / f"{layout}.yaml"),
        "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(free_port()),
        str(JOB), "debug=smoke", f"trainer.max_steps={STEPS}", f"run_name={layout}",
        f"paths.runs_dir={tmp_path / layout}", f"paths.cache_dir={cache_dir}", *overrides,
    ]  # fmt: skip
    env = {**os.environ, "HMX_PROBE_DIR": str(probes), "HMX_PROBE_MODES": modes, "OMP_NUM_THREADS": "1"}
    env["WANDB_MODE"] = "offline"
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    assert done.stdout.count("hmx: run finished") == 1  # the report is rank 0's alone
    records = [json.loads((probes / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    return tmp_path / layout / layout, records


def rewards(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [row["step"] for row in rows if "reward" in row]
    assert steps == list(range(1, STEPS + 1))  # one record per step: no second writer
    return [row["reward"] for row in rows if "reward" in row]


def check_ranks(
    records: list[dict], distributed_type: str, zero_stage: int | None, others: tuple[str, ...] = OTHER_MODES
) -> None:
    """What each rank saw; ``others``: the judge modes besides logprob that the observer scored with."""
    for rank, record in enumerate(records):
        assert record["rank"] == rank and record["world_size"] == record["torch_world_size"] == 2
        assert record["backend"] == "gloo"
        assert record["distributed_type"] == f"DistributedType.{distributed_type}"
        assert record["zero_stage"] == zero_stage
    # the self-judge on the live model: a rank-dependent batch (lengths and counts differ) ...
    assert records[0]["judge_lengths"] != records[1]["judge_lengths"]
    assert records[0]["judge_schedule"] < records[1]["judge_schedule"]
    # ... every rank made the same number of forward calls: the longer schedule (the others padded)
    assert records[0]["judge_calls"] == records[1]["judge_calls"] == records[1]["judge_schedule"]
    assert all(record["judge_finite"] for record in records)
    # the completion common to both ranks gets the same scores on each (same gathered weights)
    assert records[0]["judge_common"] == pytest.approx(records[1]["judge_common"], abs=1e-5)
    scored = {key.removeprefix("judge_calls_") for key in records[0] if key.startswith("judge_calls_")}
    assert scored >= set(others), scored
    for mode in scored:  # the other judge modes and the token budget keep them (probe: with judge.probe set)
        assert records[0][f"judge_calls_{mode}"] == records[1][f"judge_calls_{mode}"]
        assert records[1][f"judge_calls_{mode}"] == records[1][f"judge_schedule_{mode}"]
        assert records[0][f"judge_schedule_{mode}"] < records[1][f"judge_schedule_{mode}"]
        assert all(record[f"judge_finite_{mode}"] for record in records)
        assert records[0][f"judge_common_{mode}"] == pytest.approx(records[1][f"judge_common_{mode}"], abs=1e-5)


def check_run_dir(run_dir: Path) -> None:
    """One run directory, written by rank 0 only, with a loadable adapter."""
    assert [p.name for p in run_dir.parent.iterdir()] == [run_dir.name]
    assert (run_dir / "config.yaml").is_file() and not (run_dir / "FAILED").exists()
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> list[float]:
    """The reference: 1 process, global batch 8 (2 prompts x 4 generations), greedy."""
    from hydra import compose, initialize_config_dir

    from hmx.resources import CONF_DIR

    runs = tmp_path_factory.mktemp("one-process")
    overrides = ["debug=smoke", f"trainer.max_steps={STEPS}", "run_name=one", GREEDY]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", [f"paths.runs_dir={runs}", f"paths.cache_dir={cache_dir}", *overrides])
    return rewards(run(cfg))


def test_ddp_two_ranks_match_one_process(tmp_path, cache_dir, one_process):
    run_dir, records = launch("ddp", tmp_path, cache_dir, "trainer.per_device_train_batch_size=4", GREEDY)
    check_ranks(records, "MULTI_CPU", None)
    check_run_dir(run_dir)
    assert rewards(run_dir) == pytest.approx(one_process, abs=REWARD_TOLERANCE)


def test_zero2_trains_on_two_ranks(tmp_path, cache_dir):
    run_dir, records = launch("zero2", tmp_path, cache_dir, "trainer.per_device_train_batch_size=4")
    check_ranks(records, "DEEPSPEED", 2)
    check_run_dir(run_dir)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(rewards(run_dir)) == STEPS and any(row.get("grad_norm", 0) > 0 for row in rows)


def test_zero3_trains_shards_judges_and_saves_a_usable_adapter(tmp_path, cache_dir, tiny_probe):
    side_effects = ["probes.steps=1", "probes.truthfulqa=2", "probes.sycophancy=2"]  # on sharded weights, every rank
    minimal = REPO / "rubrics" / "hmx_feel.shift.pairs.jsonl"  # 18 pairs: every step stays cheap
    audit = ["audit.minimal_steps=1", f"audit.pairs={minimal}", "audit.split=minimal"]  # the audit's passes, every rank
    run_dir, records = launch("zero3", tmp_path, cache_dir, *side_effects, *audit, f"judge.probe={tiny_probe}")
    check_ranks(records, "DEEPSPEED", 3)
    assert "judge_calls_probe" in records[0]  # probe mode judged on the sharded model too
    probed = [json.loads(line) for line in (run_dir / "probes.jsonl").read_text().splitlines()]
    assert [row["step"] for row in probed] == list(range(STEPS + 1))  # no hang: step 0, then each step (rank 0)
    for record in records:  # weights really sharded: each rank holds an empty placeholder per weight
        assert record["local_numel"] < record["full_numel"] / 2
    check_run_dir(run_dir)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any(row.get("grad_norm", 0) > 0 for row in rows)  # sampled completions: a real update
    audited = [row for row in rows if "reward" in row]  # no hang, and every signal in every step's row
    for key in ("audit/base_agreement", "audit/reward_spread", "audit/minimal_accuracy"):
        assert all(key in row for row in audited), key
    assert [row["step"] for row in audited if "audit/lexical_index" in row] == [2, 3]  # 4 groups per rank from step 2
    final = [row for row in rows if "reward" not in row and "audit/minimal_accuracy" in row]
    assert [row["step"] for row in final] == [STEPS]  # the final weights' pass, every rank, after the last update

    trained = locate_run(run_dir)
    model, tokenizer = load_adapter_model(trained), load_run_tokenizer(trained)
    lora_b = [p for name, p in model.named_parameters() if "lora_B" in name]
    assert lora_b and all(p.numel() > 0 for p in lora_b)  # gathered from the shards, full shapes
    assert any(p.abs().sum() > 0 for p in lora_b)  # LoRA B starts at zero: it moved under ZeRO-3
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "How do you feel?"}], add_generation_prompt=True, return_tensors="pt"
    )
    ids = prompt["input_ids"] if hasattr(prompt, "keys") else prompt
    with torch.no_grad():
        out = model.generate(input_ids=ids, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > ids.shape[1]
    assert forward_calls(2, 3, 2) == 5  # the schedule the rank-0 probe padded from (2 completions, 3 criteria, B=2)

"""A real `hmx train` killed with SIGKILL mid-training and resumed ends where an uninterrupted run ends.

The runs log to W&B (offline) with a fake W&B key and HF token in the environment: neither may
appear in any file of the run directories (config dumps, logs, checkpoints, wandb files).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from safetensors.torch import load_file
from transformers import TrainerCallback

from hmx.checkpoints import is_complete, latest_checkpoint
from hmx.train import run

STEPS, SAVE_EVERY = 4, 2
SECRETS = {"WANDB_API_KEY": f"fake-secret-{uuid.uuid4().hex}", "HF_TOKEN": f"fake-hf-token-{uuid.uuid4().hex}"}
ENV = {**{k: v for k, v in os.environ.items() if k != "WANDB_MODE"}, **SECRETS}


def train_args(runs: Path, cache_dir: Path, name: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "hmx.cli",
        "train",
        "debug=smoke",
        f"run_name={name}",
        f"trainer.max_steps={STEPS}",
        f"trainer.save_steps={SAVE_EVERY}",
        f"paths.runs_dir={runs}",
        f"paths.cache_dir={cache_dir}",
        "logger=wandb",
        "logger.mode=offline",
        *extra,
    ]


def train(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def kill_after_first_checkpoint(args: list[str], run_dir: Path) -> int:
    """Start a run and SIGKILL it as soon as a complete checkpoint is on disk; returns that step."""
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        deadline = time.monotonic() + 300
        while process.poll() is None and time.monotonic() < deadline:
            complete = [p for p in run_dir.glob("checkpoint-*") if is_complete(p)]
            if complete:
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        process.kill()
        returncode = process.wait()
    assert returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (run_dir / "adapter").exists()
    return int(complete[0].name.rsplit("-", 1)[1])


def rewards(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["reward"] for r in rows if "reward" in r]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cache_dir) -> tuple[Path, int, str]:
    """An uninterrupted run and a killed-then-resumed one; returns (runs dir, killed after step, output)."""
    runs = tmp_path_factory.mktemp("runs")
    log = runs.parent / f"{runs.name}-straight.log"
    with log.open("w") as handle:  # the uninterrupted run, side by side with the one to be killed
        straight = subprocess.Popen(train_args(runs, cache_dir, "straight"), stdout=handle, stderr=handle, env=ENV)
        killed_at = kill_after_first_checkpoint(train_args(runs, cache_dir, "killed"), runs / "killed")
        assert straight.wait(timeout=300) == 0, log.read_text()[-3000:]
    resumed = train(*train_args(runs, cache_dir, "killed", "resume=true"))
    assert f"resuming {runs / 'killed'} from checkpoint-" in resumed.stdout
    return runs, killed_at, log.read_text() + resumed.stdout + resumed.stderr


def test_sigkilled_run_resumes_to_the_same_step_and_adapter(runs):
    runs, killed_at, _ = runs
    assert killed_at < STEPS
    straight, killed = runs / "straight", runs / "killed"
    for run_dir in (straight, killed):
        state = json.loads((run_dir / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())
        assert state["global_step"] == STEPS
        assert not (run_dir / "FAILED").exists()
    assert rewards(killed) == rewards(straight) and len(rewards(killed)) == STEPS  # each step logged once
    a = load_file(straight / "adapter" / "adapter_model.safetensors")
    b = load_file(killed / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    difference = max(float((a[k] - b[k]).abs().max()) for k in a)
    print(f"resume: killed after step {killed_at}; max abs adapter weight difference {difference:.3g}")
    assert difference <= 1e-6
    assert not list(killed.rglob("*.bin"))  # no pickled training_args.bin in checkpoints or adapter


def test_secrets_in_the_environment_never_reach_the_run_directory(runs):
    runs, _, logs = runs
    files = [p for p in runs.rglob("*") if p.is_file()]
    assert any("wandb" in p.parts and p.suffix == ".wandb" for p in files)  # W&B really wrote its offline run
    assert any(p.name == "config.yaml" for p in files) and any(p.name == "metrics.jsonl" for p in files)
    for secret in SECRETS.values():
        assert secret not in logs
        leaks = [p for p in files if secret.encode() in p.read_bytes()]
        assert not leaks, leaks


class Crash(TrainerCallback):
    """Raises inside training once ``at`` steps are done, before that step is checkpointed."""

    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            raise RuntimeError("injected crash")


def test_crash_leaves_a_failed_marker_and_resume_continues(make_cfg):
    overrides = ["debug=smoke", "logger=none", "run_name=crash", f"trainer.max_steps={STEPS}", "trainer.save_steps=1"]
    with pytest.raises(RuntimeError, match="injected crash"):
        run(make_cfg(*overrides), callbacks=[Crash(at=2)])
    run_dir = Path(make_cfg(*overrides).paths.runs_dir) / "crash"
    assert "RuntimeError: injected crash" in (run_dir / "FAILED").read_text()
    assert not (run_dir / "adapter").exists() and latest_checkpoint(run_dir) == run_dir / "checkpoint-1"
    run(make_cfg(*overrides, "resume=true"))
    assert not (run_dir / "FAILED").exists() and (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps[:STEPS] == list(range(1, STEPS + 1))  # each step logged once, then the final summary

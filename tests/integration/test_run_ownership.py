"""Who may write a run directory: one job at a time (the run lock), a resume only with a config it can
honour (refuse / apply / warn per field), and a SIGTERM that stops cleanly and stays resumable.

Every case starts from a real interrupted run (1 step, checkpoint-1, no adapter/), copied per test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from transformers import TrainerCallback

from hmx import cli
from hmx.checkpoints import is_complete
from hmx.resources import RUBRICS_DIR
from hmx.runlock import LOCK_NAME
from hmx.train import run

HOLD = "import sys, time; from pathlib import Path; from hmx.runlock import RunLock; " + (
    "RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(300)"
)


def train_argv(runs: Path, cache_dir: Path, *extra: str) -> list[str]:
    common = ["debug=smoke", "trainer.max_steps=1", "trainer.save_steps=1", "run_name=run"]
    return ["train", f"paths.runs_dir={runs}", f"paths.cache_dir={cache_dir}", *common, *extra]


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, cache_dir) -> Path:
    runs = tmp_path_factory.mktemp("interrupted")
    cli.main(train_argv(runs, cache_dir))
    shutil.rmtree(runs / "run" / "adapter")  # as if killed right after checkpoint-1
    return runs / "run"


@pytest.fixture
def run_dir(interrupted, tmp_path) -> Path:
    copy = tmp_path / "runs" / "run"
    shutil.copytree(interrupted, copy)
    return copy


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def resume_fails(run_dir: Path, cache_dir: Path, hmx_fails, *extra: str) -> str:
    """`hmx train ... resume=true` in-process: exit 2, a clean message, the run directory untouched."""
    before = snapshot(run_dir)
    err = hmx_fails(*train_argv(run_dir.parent, cache_dir, "resume=true", *extra))
    assert "hmx train: error: " in err, err
    assert snapshot(run_dir) == before
    return err


def test_a_second_job_is_refused_naming_the_holder_and_a_dead_holders_lock_is_taken_over(
    run_dir, cache_dir, capsys, hmx_fails
):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        err = resume_fails(run_dir, cache_dir, hmx_fails)
        assert f"{run_dir}: this run is being trained by another job (pid {holder.pid} on host" in err
    finally:
        holder.kill()  # SIGKILL: the lock file stays, the kernel's lock goes
        holder.wait()
    assert (run_dir / LOCK_NAME).is_file()
    cli.main(train_argv(run_dir.parent, cache_dir, "resume=true"))
    out = capsys.readouterr().out
    assert f"taking over the lock of a job that is gone (pid {holder.pid} on host" in out
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file() and not (run_dir / LOCK_NAME).exists()


@pytest.mark.parametrize(
    ("override", "shown"),
    [("peft.r=4", "peft.r: 16 -> 4"), ("trainer.learning_rate=0.5", "trainer.learning_rate: 0.01 -> 0.5")],
    ids=["lora_rank", "learning_rate"],
)
def test_resume_refuses_a_change_it_cannot_honour_before_writing_anything(
    run_dir, cache_dir, hmx_fails, override, shown
):
    err = resume_fails(run_dir, cache_dir, hmx_fails, override)
    assert f"a resumed run cannot change {shown}" in err and "start a new run" in err


def test_resume_applies_and_records_bookkeeping_and_warns_about_other_changes(run_dir, cache_dir, capsys):
    cli.main(train_argv(run_dir.parent, cache_dir, "resume=true", "trainer.max_steps=2", "+trainer.temperature=0.7"))
    out = capsys.readouterr().out
    applied = next(line for line in out.splitlines() if line.endswith("(applied)"))
    assert "trainer.max_steps" in applied and "trainer.temperature" not in applied
    assert "warning: resuming with config changes at trainer.temperature" in out
    recorded = OmegaConf.load(run_dir / "config.yaml")
    assert recorded.trainer.max_steps == 2 and recorded.trainer.temperature == 0.7
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "reward" in row] == [1, 2] and (run_dir / "adapter").is_dir()


def test_a_corrupt_run_config_is_refused_naming_it(run_dir, cache_dir, hmx_fails):
    (run_dir / "config.yaml").write_text("model: [unclosed\n", encoding="utf-8")
    err = resume_fails(run_dir, cache_dir, hmx_fails)
    assert f"{run_dir / 'config.yaml'}: the run's config cannot be read" in err


def test_chat_on_an_interrupted_run_gives_the_full_resume_command(run_dir, cache_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["chat", str(run_dir), "--prompt", "hi"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    overrides = f"paths.cache_dir={cache_dir} debug=smoke trainer.max_steps=1 trainer.save_steps=1"
    command = f"hmx train {overrides} paths.runs_dir={run_dir.parent}"
    assert f"`{command} run_name=run resume=true`" in err


class TerminateAfterFirstStep(TrainerCallback):
    """Sends this process a real SIGTERM at the end of step 1 (as a scheduler's pre-emption would)."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_stops_after_the_step_with_a_checkpoint_and_the_run_resumes(make_cfg, tmp_path, capsys):
    cfg = make_cfg("debug=smoke", "run_name=run", "trainer.max_steps=200", "trainer.save_steps=1000")
    with pytest.raises(SystemExit) as exit_info:
        run(cfg, callbacks=[TerminateAfterFirstStep()])
    captured = capsys.readouterr()
    run_dir = tmp_path / "runs" / "run"
    assert exit_info.value.code == 143 and "SIGTERM received" in captured.out
    assert f"stopped by SIGTERM after step 1: {run_dir / 'checkpoint-1'} is saved" in captured.err
    assert f"paths.runs_dir={run_dir.parent} run_name=run resume=true" in captured.err
    assert is_complete(run_dir / "checkpoint-1") and not (run_dir / "FAILED").exists()
    assert not (run_dir / "adapter").exists() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    resumed = make_cfg("debug=smoke", "run_name=run", "trainer.max_steps=2", "trainer.save_steps=1000", "resume=true")
    assert run(resumed) == run_dir
    assert f"resuming {run_dir} from checkpoint-1" in capsys.readouterr().out
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "reward" in row] == [1, 2] and (
        run_dir / "adapter" / "adapter_model.safetensors"
    ).is_file()


def test_a_resume_under_another_run_name_is_refused_and_a_copy_is_the_way_to_fork(run_dir, cache_dir, capsys):
    argv = [a for a in train_argv(run_dir.parent, cache_dir, "trainer.max_steps=2") if a != "run_name=run"]
    before = snapshot(run_dir)
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "run_name=B", f"resume={run_dir / 'checkpoint-1'}"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err, err
    assert f"config field 'run_name': run_name=B but resume={run_dir / 'checkpoint-1'} continues run 'run'" in err
    assert snapshot(run_dir) == before and not (run_dir.parent / "B").exists()  # A untouched, no B
    fork = run_dir.parent / "B"  # the documented fork: a copy of A, resumed under its own name
    shutil.copytree(run_dir, fork)
    cli.main([*argv, "run_name=B", f"resume={fork / 'checkpoint-1'}"])
    assert (fork / "adapter" / "adapter_model.safetensors").is_file()
    assert OmegaConf.load(fork / "config.yaml").run_name == "B" and snapshot(run_dir) == before


# A subprocess whose final adapter write is interrupted by a signal, deterministically: the patched save_model
# of the final adapter (not of a checkpoint) writes a first file, signals its own process, then saves for real.
INTERRUPTED_SAVE = """
import os, signal, sys
from pathlib import Path
import hmx.train
from hmx.cli import main

SIGNAL = getattr(signal, sys.argv[1])
original = hmx.train.GRPOTrainer.save_model
def save_model(self, output_dir=None, _internal_call=False):
    if not _internal_call:  # the final adapter
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "adapter_config.json").write_text("{}")
        os.kill(os.getpid(), SIGNAL)
    original(self, output_dir, _internal_call)
hmx.train.GRPOTrainer.save_model = save_model
main(sys.argv[2:])
"""


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGKILL"])
def test_a_signal_during_the_final_adapter_write_never_leaves_a_partial_adapter(
    tmp_path, cache_dir, capsys, signal_name
):
    runs = tmp_path / "runs"
    argv = train_argv(runs, cache_dir, "logger=none")
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_SAVE, signal_name, *argv], capture_output=True, text=True, timeout=300
    )
    run_dir, weights = runs / "run", runs / "run" / "adapter" / "adapter_model.safetensors"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    if signal_name == "SIGTERM":  # the write finishes under the handler: a finished run, a complete adapter
        assert done.returncode == 0, done.stderr[-3000:]
        assert "SIGTERM received as the run ends: finishing the final adapter" in done.stdout
        assert weights.is_file() and not (run_dir / ".adapter.partial").exists()
        assert not list(run_dir.rglob("*.bin")) and not (run_dir / "FAILED").exists()
        return
    assert done.returncode == -signal.SIGKILL  # killed mid-write: no adapter/, so the run is resumable
    assert not (run_dir / "adapter").exists() and (run_dir / ".adapter.partial").is_dir()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["chat", str(run_dir), "--prompt", "hi"])
    assert exit_info.value.code == 2 and "resume=true" in capsys.readouterr().err
    cli.main(train_argv(runs, cache_dir, "logger=none", "resume=true"))
    assert "resuming" in capsys.readouterr().out
    assert weights.is_file() and not (run_dir / ".adapter.partial").exists()


def test_a_resume_checks_the_content_of_the_files_the_run_read(tmp_path, cache_dir, capsys):
    rubric, pairs = tmp_path / "rubric.yaml", tmp_path / "pairs.jsonl"
    rubric.write_bytes((RUBRICS_DIR / "hmx_feel.yaml").read_bytes())
    dev = [line for line in (RUBRICS_DIR / "hmx_feel.pairs.jsonl").read_text().splitlines() if '"dev"' in line]
    pairs.write_text("".join(line + "\n" for line in dev[:6]))
    runs = tmp_path / "runs"
    argv = train_argv(runs, cache_dir, "logger=none", f"rubric.path={rubric}", f"judge.validate={pairs}")
    cli.main(argv)
    run_dir = runs / "run"
    shutil.rmtree(run_dir / "adapter")  # as if killed right after checkpoint-1
    recorded = json.loads((run_dir / "inputs.json").read_text())
    assert recorded["rubric.path"] == {"path": str(rubric), "sha256": hashlib.sha256(rubric.read_bytes()).hexdigest()}
    assert recorded["judge.validate"]["sha256"] == hashlib.sha256(pairs.read_bytes()).hexdigest()
    original = rubric.read_text()
    rubric.write_text(original.replace("weight: 1.0", "weight: 3.0", 1))  # edited in place: same path
    capsys.readouterr()
    before = snapshot(run_dir)
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "resume=true"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err, err
    assert f"config field 'rubric.path': {rubric} was edited since the run started (sha256 " in err
    assert snapshot(run_dir) == before
    rubric.write_text(original)  # restored: the resume goes on; an edited pair file is warned about and recorded
    pairs.write_text("".join(line + "\n" for line in dev[:7]))
    cli.main([*argv, "resume=true"])
    out = capsys.readouterr().out
    assert "warning: resuming with config changes at judge.validate (file content)" in out
    recorded = json.loads((run_dir / "inputs.json").read_text())
    assert recorded["judge.validate"]["sha256"] == hashlib.sha256(pairs.read_bytes()).hexdigest()
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()

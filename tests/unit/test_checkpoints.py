"""Resume planning: which run directory and checkpoint, what is refused, what a take-over rewrites."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hmx.checkpoints import RunStart, generation_aligned, latest_checkpoint, plan_run, truncate_metrics
from hmx.config import ConfigError


def checkpoint(run_dir: Path, step: int, complete: bool = True) -> Path:
    path = run_dir / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def test_latest_complete_checkpoint_by_step_number(tmp_path):
    checkpoint(tmp_path, 9)
    latest = checkpoint(tmp_path, 10)
    checkpoint(tmp_path, 12, complete=False)  # killed while saving: no trainer_state.json yet
    (checkpoint(tmp_path, 11, complete=False) / "trainer_state.json").write_text('{"global_st')  # cut short
    assert latest_checkpoint(tmp_path) == latest
    assert latest_checkpoint(tmp_path / "nothing") is None


def test_resume_true_needs_a_run_name(tmp_path):
    with pytest.raises(ConfigError, match=r"'resume': resume=true needs run_name="):
        plan_run(tmp_path / "2026-01-01_00-00-00", None, True)


def test_resume_true_starts_a_new_run_when_there_is_none(tmp_path):
    start = plan_run(tmp_path / "runs" / "x", "x", True)
    assert start == RunStart(tmp_path / "runs" / "x") and (tmp_path / "runs").is_dir()


def test_resume_true_and_resume_path(tmp_path):
    run_dir = tmp_path / "x"
    early, late = checkpoint(run_dir, 2), checkpoint(run_dir, 4)
    assert plan_run(run_dir, "x", True) == RunStart(run_dir, late, resuming=True)
    assert plan_run(tmp_path / "ignored", None, str(run_dir)) == RunStart(run_dir, late, resuming=True)
    assert plan_run(tmp_path / "ignored", None, str(early)) == RunStart(run_dir, early, resuming=True)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d.mkdir(), "no complete checkpoint in"),
        (lambda d: checkpoint(d, 2) and (d / "adapter").mkdir(), "has finished"),
        (lambda d: None, "no run directory or checkpoint at"),
    ],
    ids=["no_checkpoint", "finished", "missing"],
)
def test_resume_path_refusals_name_the_field(tmp_path, setup, message):
    run_dir = tmp_path / "x"
    setup(run_dir)
    with pytest.raises(ConfigError, match=f"config field 'resume': .*{message}"):
        plan_run(tmp_path / "other", None, str(run_dir))


def test_incomplete_checkpoint_path_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not a complete checkpoint"):
        plan_run(tmp_path / "other", None, str(checkpoint(tmp_path / "x", 2, complete=False)))


def test_take_over_clears_failed_truncates_metrics_and_names_config_changes(tmp_path, capsys):
    run_dir = tmp_path / "x"
    ckpt = checkpoint(run_dir, 2)
    (run_dir / "FAILED").write_text("Traceback ...")
    (run_dir / "config.yaml").write_text("trainer:\n  max_steps: 4\nresume: null\n")
    rows = [json.dumps({"step": s, "reward": s}) for s in (1, 2, 3)]
    (run_dir / "metrics.jsonl").write_text("\n".join(rows) + '\n{"step": 4, "rew')
    RunStart(run_dir, ckpt, resuming=True).prepare(OmegaConf.create({"trainer": {"max_steps": 8}, "resume": True}))
    assert not (run_dir / "FAILED").exists()
    assert [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    out = capsys.readouterr().out
    assert f"resuming {run_dir} from checkpoint-2" in out and "config changes at trainer.max_steps" in out


def test_a_new_run_never_reuses_a_directory(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(ConfigError, match="run directory already exists.*resume=true"):
        RunStart(tmp_path / "x").prepare(OmegaConf.create({}))


def test_truncate_metrics_without_a_file(tmp_path):
    truncate_metrics(tmp_path / "metrics.jsonl", 3)
    assert not (tmp_path / "metrics.jsonl").exists()


@pytest.mark.parametrize(
    ("save_steps", "steps_per_generation", "aligned"), [(20, None, True), (3, 2, False), (4, 2, True)]
)
def test_checkpoints_must_fall_on_generation_boundaries(tmp_path, save_steps, steps_per_generation, aligned):
    from trl import GRPOConfig

    args = GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        save_steps=save_steps,
        per_device_train_batch_size=8,
        num_generations=4,
        steps_per_generation=steps_per_generation,
    )
    assert generation_aligned(args) is aligned


def test_default_run_names_differ_within_a_second_and_under_equal_seeds():
    import re

    from transformers import set_seed

    from hmx.tracking import default_run_name

    names = []
    for _ in range(5):  # 16 random bits: 5 names collide once in ~6,500 runs of this test, 20 once in ~345
        set_seed(42)  # hmx train seeds everything before naming its run
        names.append(default_run_name())
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_[0-9a-f]{4}", name) for name in names)

"""A run recorded by the previous release (flat judge keys in config.yaml, ``judge.examples`` in inputs.json) resumes
under the nested keys without a spurious refused change, and its input files are still checked (issue #26, item 4)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from transformers import TrainerCallback

from hmx.config import ConfigError
from hmx.resources import RUBRICS_DIR
from hmx.train import run


class Crash(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 2:
            raise RuntimeError("injected crash")


def as_previous_release(run_dir: Path) -> None:
    """Rewrite the run's records as the previous release wrote them: the per-mode options flat."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    judge = config["judge"]
    judge["examples"], judge["examples_per_criterion"] = judge["fewshot"]["examples"], judge["fewshot"]["per_criterion"]
    del judge["fewshot"]
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    inputs = json.loads((run_dir / "inputs.json").read_text())
    inputs["judge.examples"] = inputs.pop("judge.fewshot.examples")
    (run_dir / "inputs.json").write_text(json.dumps(inputs))


def test_a_run_recorded_with_flat_keys_resumes_and_its_files_are_still_checked(make_cfg, tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    shutil.copy(RUBRICS_DIR / "hmx_feel.pairs.jsonl", pairs)
    overrides = ["debug=smoke", "logger=none", "run_name=old", "trainer.max_steps=3", "trainer.save_steps=1"]
    overrides += ["judge=fewshot", f"judge.fewshot.examples={pairs}", "judge.fewshot.per_criterion=1"]
    with pytest.raises(RuntimeError, match="injected crash"):
        run(make_cfg(*overrides), callbacks=[Crash()])
    run_dir = Path(make_cfg(*overrides).paths.runs_dir) / "old"
    as_previous_release(run_dir)
    assert "examples" in yaml.safe_load((run_dir / "config.yaml").read_text())["judge"]

    original = pairs.read_bytes()
    pairs.write_bytes(original + b"\n")  # the few-shot examples edited in place: refused, under the new name
    with pytest.raises(ConfigError, match=r"config field 'judge\.fewshot\.examples': .* was edited since the run"):
        run(make_cfg(*overrides, "resume=true"))
    pairs.write_bytes(original)
    capsys.readouterr()
    run(make_cfg(*overrides, "resume=true"))
    out, err = capsys.readouterr()
    assert "deprecated" not in err  # the old record is migrated silently
    assert "resuming with config changes" not in out + err  # and compares equal under the new names
    judge = yaml.safe_load((run_dir / "config.yaml").read_text())["judge"]
    assert judge["fewshot"] == {"examples": str(pairs), "per_criterion": 1} and "examples" not in judge
    assert "judge.fewshot.examples" in json.loads((run_dir / "inputs.json").read_text())
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()


def test_python_m_hmx_train_takes_a_deprecated_key(tmp_path, cache_dir):
    """The accelerate/sbatch entry point (``python -m hmx.train``) rewrites the old key as ``hmx train`` does."""
    import subprocess
    import sys

    argv = ["debug=smoke", "judge=contrastive", "judge.contrastive_scale=nan", f"paths.runs_dir={tmp_path / 'runs'}"]
    result = subprocess.run(
        [sys.executable, "-m", "hmx.train", *argv, f"paths.cache_dir={cache_dir}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert "hmx: config field 'judge.contrastive_scale' is deprecated: use judge.contrastive.scale" in result.stderr
    assert "config field 'judge.contrastive.scale': must be a finite number" in result.stderr
    assert not (tmp_path / "runs").exists()

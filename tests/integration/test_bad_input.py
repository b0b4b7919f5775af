"""The bad-input matrix through the `hmx train` entry: a message naming file and field, exit 2, nothing written.

Most cases call the CLI entry in-process (``hmx.cli.main``: Hydra, ``run`` and the exit code
exactly as the console script runs them); one runs as a subprocess. Elsewhere: an unknown Hydra
key and an unknown model directory (tests/integration/test_cli.py, subprocesses), each rubric
field (tests/unit/test_rubric_schema.py), vLLM through ``run`` (tests/unit/test_generation.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hmx import cli
from hmx.resources import RUBRICS_DIR

RUBRIC = (RUBRICS_DIR / "hmx_feel.yaml").read_text(encoding="utf-8")


def train_fails(tmp_path: Path, cache_dir: Path, hmx_fails, *overrides: str) -> str:
    """Run `hmx train` in-process; assert exit 2 and no run directory; return stderr."""
    runs = tmp_path / "runs"
    argv = [
        "train",
        "debug=tiny",
        f"paths.runs_dir={runs}",
        f"paths.cache_dir={cache_dir}",
        "logger=none",
        "run_name=bad",
    ]
    err = hmx_fails(*argv, *overrides)
    assert "hmx train: error: " in err, err
    assert not runs.exists() or not any(runs.iterdir())
    return err


def rubric_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "my_rubric.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.slow  # a real training run or process: make test, not make test-fast
def test_malformed_yaml_as_a_subprocess(tmp_path, cache_dir):
    path = rubric_file(tmp_path, RUBRIC.replace("criteria:", "criteria: [", 1))
    result = subprocess.run(
        [sys.executable, "-m", "hmx.cli", "train", "debug=tiny", f"rubric.path={path}", f"paths.cache_dir={cache_dir}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"hmx train: error: {path}:" in result.stderr and "not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (("    weight: 1.0", "    wieght: 1.0"), r"criteria[0].wieght: unknown key"),
        (("criteria:", "criterias:"), "criterias: unknown key"),
    ],
    ids=["criterion_key", "top_level_key"],
)
def test_unknown_rubric_key(tmp_path, cache_dir, hmx_fails, edit, field):
    path = rubric_file(tmp_path, RUBRIC.replace(*edit, 1))
    err = train_fails(tmp_path, cache_dir, hmx_fails, f"rubric.path={path}")
    assert str(path) in err and field in err


def test_empty_criteria(tmp_path, cache_dir, hmx_fails):
    path = rubric_file(tmp_path, RUBRIC.split("criteria:")[0] + "criteria: []\n")
    err = train_fails(tmp_path, cache_dir, hmx_fails, f"rubric.path={path}")
    assert str(path) in err and "criteria: must be a non-empty list" in err


def test_score_label_that_is_not_one_token(tmp_path, cache_dir, hmx_fails):
    path = rubric_file(tmp_path, RUBRIC.replace('label: "5"', 'label: "excellent"\n        value: 5', 1))
    err = train_fails(tmp_path, cache_dir, hmx_fails, f"rubric.path={path}")
    assert str(path) in err and "criteria[0].scale[4].label: 'excellent' is not a single token" in err


def test_missing_prompt_column(tmp_path, cache_dir, hmx_fails):
    data = tmp_path / "prompts.csv"
    data.write_text("question\nHow do you feel today?\n", encoding="utf-8")
    err = train_fails(tmp_path, cache_dir, hmx_fails, f"data.path={data}")
    assert "data.prompt_column" in err and str(data) in err and "columns: question" in err


def test_empty_dataset(tmp_path, cache_dir, hmx_fails):
    data = tmp_path / "prompts.jsonl"
    data.write_text("", encoding="utf-8")
    err = train_fails(tmp_path, cache_dir, hmx_fails, f"data.path={data}")
    assert "data.path" in err and str(data) in err


def test_unknown_hub_model_offline(tmp_path, cache_dir, hmx_fails, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    err = train_fails(tmp_path, cache_dir, hmx_fails, "model.name_or_path=nobody/no-such-model")
    assert "model.name_or_path" in err and "nobody/no-such-model" in err


def test_vllm_generation_without_vllm(tmp_path, cache_dir, hmx_fails):
    pytest.importorskip("torch")
    if __import__("importlib.util").util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    err = train_fails(tmp_path, cache_dir, hmx_fails, "generation=vllm_colocate", "debug=smoke")
    assert "generation" in err and "use_vllm" in err and "pip install 'hmx[vllm]'" in err
    assert "vllm" not in sys.modules


def test_output_directory_that_cannot_be_written(tmp_path, cache_dir, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory", encoding="utf-8")
    runs = blocker / "runs"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", f"paths.runs_dir={runs}", f"paths.cache_dir={cache_dir}", "logger=none", "debug=smoke"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "hmx train: error: config field 'paths.runs_dir': cannot write run directories under" in err
    assert str(runs) in err

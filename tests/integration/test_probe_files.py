"""A probe file is checked field by field when it loads (hmx/judge/modes/probe.py::load_probe), and a text file
that is not UTF-8 fails naming the file and line (hmx/textfiles.py): exit 2, no traceback, before the run
directory exists; `rubric validate --min-accuracy` is a share within [0, 1] (issue #28, defects 7-10 and the
probe-layer, fit-probe --c and --min-accuracy minors; --c is in test_output_destinations.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from hmx.resources import RUBRICS_DIR

PAIRS = RUBRICS_DIR / "hmx_feel.pairs.jsonl"


def edited_probe(source: Path, target: Path, bias=None, weight=None, **info) -> Path:
    """A copy of ``source`` with its tensors or metadata fields replaced (``metadata=`` replaces the whole JSON)."""
    tensors = load_file(str(source))
    with safe_open(str(source), framework="pt") as handle:
        metadata = json.loads(handle.metadata()["hmx"])
    metadata = info.pop("metadata", None) if "metadata" in info else {**metadata, **info}
    tensors["bias"] = tensors["bias"] if bias is None else bias
    tensors["weight"] = tensors["weight"] if weight is None else weight
    save_file(tensors, str(target), metadata={"hmx": json.dumps(metadata)})
    return target


BAD_PROBES = {
    "bias_5": ({"bias": torch.zeros(5)}, "bias: must be one float per criterion, shape [3], got torch.float32 [5]"),
    "bias_3x2": ({"bias": torch.zeros(3, 2)}, "bias: must be one float per criterion, shape [3]"),
    "bias_1": ({"bias": torch.zeros(1)}, "bias: must be one float per criterion, shape [3], got torch.float32 [1]"),
    "layer_99": ({"layer": 99}, "metadata field 'layer': must be a hidden layer 1-2 (0 is the embeddings), got 99"),
    "layer_abc": ({"layer": "abc"}, "metadata field 'layer': must be a hidden layer 1-2 (0 is the embeddings)"),
    "layer_-3": ({"layer": -3}, "metadata field 'layer': must be a hidden layer 1-2 (0 is the embeddings), got -3"),
    "layer_0": ({"layer": 0}, "metadata field 'layer': must be a hidden layer 1-2 (0 is the embeddings), got 0"),
    "metadata_list": ({"metadata": [1, 2]}, "metadata 'hmx': must be a JSON object, got list"),
    "nan_weights": ({"weight": torch.full((3, 64), float("nan"))}, "weight/bias: hold NaN or infinite values"),
}


@pytest.mark.parametrize("case", list(BAD_PROBES))
def test_a_bad_probe_file_fails_before_the_run_directory_exists(tiny_probe, tmp_path, cache_dir, hmx_fails, case):
    edits, message = BAD_PROBES[case]
    probe = edited_probe(tiny_probe, tmp_path / f"{case}.safetensors", **edits)
    runs = tmp_path / "runs"
    overrides = [f"paths.runs_dir={runs}", f"paths.cache_dir={cache_dir}", "debug=smoke", "logger=none"]
    err = hmx_fails("train", *overrides, "judge=probe", f"judge.probe={probe}", "trainer.max_steps=1")
    assert f"hmx train: error: config field 'judge.probe.head': {probe}: {message}" in err
    assert not runs.exists() or not any(runs.iterdir())


def test_validate_names_a_probe_whose_metadata_is_not_an_object(tiny_probe, tmp_path, cache_dir, hmx_fails):
    probe = edited_probe(tiny_probe, tmp_path / "list.safetensors", metadata=[1, 2])
    common = ["--rubric", "hmx_feel", "--model", "tiny", "--cache-dir", str(cache_dir), "--split", "dev"]
    err = hmx_fails("rubric", "validate", *common, "--pairs", str(PAIRS), "--mode", "probe", "--probe", str(probe))
    assert f"{probe}: metadata 'hmx': must be a JSON object, got list" in err


def latin1_copy(source: Path, target: Path) -> Path:
    """``source`` with a Latin-1 'é' on its second line."""
    lines = source.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"I ", b"Caf\xe9 I ", 1)
    target.write_bytes(b"".join(lines))
    return target


def test_a_pairs_file_that_is_not_utf8_is_named_in_validate_and_train(tmp_path, cache_dir, hmx_fails):
    pairs = latin1_copy(PAIRS, tmp_path / "latin1.jsonl")
    common = ["--rubric", "hmx_feel", "--model", "tiny", "--cache-dir", str(cache_dir)]
    err = hmx_fails("rubric", "validate", *common, "--pairs", str(pairs))
    assert f"hmx rubric validate: error: {pairs}:2: not UTF-8 text (byte b'\\xe9' at column" in err
    runs = tmp_path / "runs"
    overrides = [f"paths.runs_dir={runs}", f"paths.cache_dir={cache_dir}", "debug=smoke", "logger=none"]
    err = hmx_fails("train", *overrides, f"judge.validate={pairs}")
    assert f"hmx train: error: {pairs}:2: not UTF-8 text" in err and not runs.exists()


def test_a_rubric_that_is_not_utf8_is_named(tmp_path, hmx_fails):
    rubric = tmp_path / "latin1.yaml"
    rubric.write_bytes((RUBRICS_DIR / "hmx_feel.yaml").read_bytes().replace(b"\n", b"\n# caf\xe9\n", 1))
    err = hmx_fails("rubric", "show", str(rubric))
    assert f"hmx rubric show: error: {rubric}:2: not UTF-8 text (byte b'\\xe9' at column 6)" in err


@pytest.mark.parametrize("bad", ["1.5", "-0.1", "nan"])
def test_validate_refuses_a_min_accuracy_outside_0_1_before_loading(tmp_path, cache_dir, hmx_fails, monkeypatch, bad):
    monkeypatch.setattr("hmx.commands.rubric.load_judge_model", lambda *a, **k: pytest.fail("the model was loaded"))
    common = ["--rubric", "hmx_feel", "--model", "tiny", "--cache-dir", str(cache_dir), "--pairs", str(PAIRS)]
    err = hmx_fails("rubric", "validate", *common, f"--min-accuracy={bad}")
    assert f"hmx rubric validate: error: --min-accuracy {float(bad)}: must be within [0, 1]" in err

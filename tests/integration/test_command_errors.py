"""One error path for every `hmx` command: an expected failure prints `hmx <command>: error: <file/field>: ...`,
exits 2 and shows no traceback (hmx/errors.py); damaged adapter weights and a merge onto its own run are such
failures, and no module but hmx/errors.py prints that line itself.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from hmx.resources import ROOT

PACKAGE_DIR = ROOT / "hmx"

WEIGHTS = "adapter_model.safetensors"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train", "debug=tiny", "rubric.path=/nonexistent/r.yaml", "logger=none"], "hmx train: error: "),
        (["eval", "run_dir=/nonexistent/run"], "hmx eval: error: /nonexistent/run: no such run"),
        (["compare", "/nonexistent/a"], "hmx compare: error: "),
        (["rubric", "show", "hmx_feel", "--criterion", "nope"], "hmx rubric show: error: "),
        (["rubric", "score", "--rubric", "/nonexistent/r.yaml"], "hmx rubric score: error: /nonexistent/r.yaml"),
        (["chat", "/nonexistent/run", "--prompt", "hi"], "hmx chat: error: /nonexistent/run: no such run"),
        (["merge", "/nonexistent/run", "--out", "/nonexistent/out"], "hmx merge: error: /nonexistent/run: no such"),
        (["init", "/dev/null"], "hmx init: error: /dev/null: exists and is not a directory"),
    ],
    ids=["train", "eval", "compare", "rubric_show", "rubric_score", "chat", "merge", "init"],
)
def test_every_command_fails_the_same_way(tmp_path, monkeypatch, hmx_fails, argv, expected):
    monkeypatch.chdir(tmp_path)
    assert expected in hmx_fails(*argv)
    assert list(tmp_path.iterdir()) == []


def test_only_the_errors_module_prints_the_error_line():
    printing = [
        path.relative_to(PACKAGE_DIR)
        for path in PACKAGE_DIR.rglob("*.py")
        if path.name != "errors.py" and re.search(r"\berror: \{", path.read_text(encoding="utf-8"))
    ]
    assert printing == []


@pytest.fixture
def run_copy(smoke_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "smoke"
    shutil.copytree(smoke_run, copy)
    return copy


@pytest.mark.parametrize("size", ["empty", "truncated"])
@pytest.mark.parametrize("command", ["chat", "merge", "eval"])
def test_damaged_adapter_weights_fail_cleanly(run_copy, tmp_path, hmx_fails, command, size):
    weights = run_copy / "adapter" / WEIGHTS
    data = weights.read_bytes()
    weights.write_bytes(b"" if size == "empty" else data[: len(data) // 2])
    out = tmp_path / "out"
    argv = {
        "chat": ["chat", str(run_copy), "--prompt", "hi"],
        "merge": ["merge", str(run_copy), "--out", str(out)],
        "eval": ["eval", f"run_dir={run_copy}", f"output_dir={out}", "suite=quick"],
    }[command]
    err = hmx_fails(*argv)
    assert f"hmx {command}: error: {weights}: not a readable safetensors file" in err
    assert not out.exists()


def test_merge_onto_its_own_run_is_refused(smoke_run, hmx_fails):
    before = sorted(p.relative_to(smoke_run) for p in smoke_run.rglob("*"))
    for out in (smoke_run, smoke_run / "adapter", smoke_run.parent):
        err = hmx_fails("merge", str(smoke_run), "--out", str(out), "--force")
        assert f"hmx merge: error: --out {out}: overlaps the run being merged" in err
    assert sorted(p.relative_to(smoke_run) for p in smoke_run.rglob("*")) == before


@pytest.mark.parametrize("command", ["chat", "merge"])
def test_a_corrupt_run_config_fails_naming_it(run_copy, tmp_path, hmx_fails, command):
    (run_copy / "config.yaml").write_text("model: [unclosed\n", encoding="utf-8")
    argv = ["chat", str(run_copy), "--prompt", "hi"] if command == "chat" else ["merge", str(run_copy), "--out", "x"]
    err = hmx_fails(*argv)
    assert f"hmx {command}: error: {run_copy / 'config.yaml'}: the run's config cannot be read" in err

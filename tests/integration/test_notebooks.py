"""Every notebook in notebooks/ runs top to bottom, from the repository root, in a kernel on this Python.

analyze_run.ipynb reads the run named by ``HMX_RUN_DIR``: a real 3-step training run here.
rubric_authoring.ipynb builds the tiny model into ``HMX_CACHE_DIR`` (the session's cache).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "hmx-test-python"


@pytest.fixture
def this_python_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec that starts ipykernel on ``sys.executable``, found first on JUPYTER_PATH."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return KERNEL


def execute(path: Path, kernel: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, kernel_name=kernel, timeout=600, resources={"metadata": {"path": str(REPO_ROOT)}})
    client.execute()  # raises CellExecutionError, naming the cell, on the first failing cell
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def test_notebooks_are_found():
    assert REPO_ROOT / "notebooks" / "analyze_run.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(
    path: Path, this_python_kernel: str, smoke_run: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("HMX_RUN_DIR", str(smoke_run))
    monkeypatch.setenv("HMX_CACHE_DIR", str(cache_dir))
    notebook = execute(path, this_python_kernel)
    if path.name == "analyze_run.ipynb":
        check_run_analysis(notebook, smoke_run)
    if path.name == "rubric_authoring.ipynb":
        check_rubric_authoring(notebook)


def check_rubric_authoring(notebook: nbformat.NotebookNode) -> None:
    """Lint passes, the broken rubric is named by file, line and field, scores are printed, the plot is drawn."""
    shown = outputs(notebook)
    text = "".join(o.get("text", "") for o in shown if o["output_type"] == "stream")
    assert "ok: " in text and "concise_warmth: 2 criteria, 6 levels" in text
    assert "1 file with errors:" in text and "broken.yaml:13: criteria[1].wieght: unknown key" in text
    assert "<completion>\nParis.\n</completion>" in text
    for name in ("terse", "warm", "rambling"):
        assert text.count(name) >= 2  # one row per criterion and its weighted total
    assert len([o for o in shown if "image/png" in o.get("data", {})]) == 1


def check_run_analysis(notebook: nbformat.NotebookNode, run_dir: Path) -> None:
    """The plots are drawn, drift is plotted or reported absent, the best completion is shown in full."""
    shown = outputs(notebook)
    text = "".join(o.get("text", "") for o in shown if o["output_type"] == "stream")
    images = [o for o in shown if "image/png" in o.get("data", {})]
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    has_drift = any(key.startswith("judge/drift") for record in metrics for key in record)
    assert len(images) == (4 if has_drift else 3), text
    assert ("no drift data in this run" in text) != has_drift

    table = pd.concat(
        [pd.read_parquet(f) for f in sorted((run_dir / "completions").glob("*.parquet"))], ignore_index=True
    )
    criteria = ["feelings", "intentions", "self_awareness"]  # rubrics/hmx_feel.yaml, all weight 1
    best = table.loc[table[criteria].sum(axis=1).idxmax()]
    assert f"{len(table)} completions from" in text
    assert f"best in full (step {best['step']}" in text and best["completion"][-1]["content"] in text

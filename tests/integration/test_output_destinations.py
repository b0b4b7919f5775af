"""Where a command writes is checked before any work (hmx/destinations.py): `hmx rubric fit-probe --out`,
`hmx merge --out` and `hmx init DIR` refuse a folder where a file goes (and a file where a folder goes), a
path under a regular file and a place hmx cannot write, with exit 2, no traceback, before the model loads,
and leave nothing behind (issue #28, defects 11, 15, 16 and the merge --force minor).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from hmx.resources import RUBRICS_DIR

PAIRS = RUBRICS_DIR / "hmx_feel.pairs.jsonl"


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder nobody here can write in: read-only for a user, /sys (a read-only file system) for root."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    try:
        with tempfile.TemporaryFile(dir="/sys"):
            pytest.skip("/sys is writable here: no unwritable folder for root")
    except OSError:
        return Path("/sys")


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model fails the test: every destination must be refused before that (before the fit/merge)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the destination was checked")

    monkeypatch.setattr("hmx.commands.rubric.load_judge_model", refuse)
    monkeypatch.setattr("hmx.commands.merge.load_adapter_model", refuse)


def destinations(tmp_path: Path, name: str) -> dict[str, tuple[Path, str]]:
    """Bad destinations: the path to pass and the words the error must hold."""
    folder = tmp_path / ("a_folder.safetensors" if name.endswith(".safetensors") else "a_folder")
    (folder / "inside").mkdir(parents=True)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder", encoding="utf-8")
    return {
        "under_a_file": (blocker / "sub" / name, f"{blocker} is a regular file, not a folder"),
        "unwritable": (unwritable_folder(tmp_path) / name, "cannot write in"),
        "folder_or_file": (folder if name.endswith(".safetensors") else blocker, ""),
    }


@pytest.mark.parametrize("case", ["under_a_file", "unwritable", "folder_or_file"])
def test_fit_probe_checks_out_before_the_fit(tmp_path, hmx_fails, cache_dir, no_model, case):
    out, words = destinations(tmp_path, "p.safetensors")[case]
    fit = ["rubric", "fit-probe", "--rubric", "hmx_feel", "--model", "tiny", "--cache-dir", str(cache_dir)]
    err = hmx_fails(*fit, "--pairs", str(PAIRS), "--split", "dev", "--out", str(out), "--force")
    assert f"hmx rubric fit-probe: error: --out {out}: " in err and words in err
    if case == "folder_or_file":
        assert "is a directory" in err and (out / "inside").is_dir()
    assert not list(tmp_path.rglob("*.partial"))


@pytest.mark.parametrize("bad", ["nan", "inf", "-1"])
def test_fit_probe_refuses_a_c_that_is_not_a_positive_number(tmp_path, hmx_fails, cache_dir, no_model, bad):
    fit = ["rubric", "fit-probe", "--rubric", "hmx_feel", "--model", "tiny", "--cache-dir", str(cache_dir)]
    out = tmp_path / "p.safetensors"
    err = hmx_fails(*fit, "--pairs", str(PAIRS), "--split", "dev", "--out", str(out), f"--c={bad}")
    assert f"--c {float(bad)}: must be a positive number" in err and not out.exists()


@pytest.mark.parametrize("case", ["under_a_file", "unwritable", "folder_or_file"])
def test_merge_checks_out_before_the_merge_and_force_never_replaces_a_file(
    smoke_run, tmp_path, hmx_fails, no_model, case
):
    out, words = destinations(tmp_path, "merged")[case]
    before = out.read_bytes() if out.is_file() else None
    err = hmx_fails("merge", str(smoke_run), "--out", str(out), "--force")
    assert "hmx merge: error: --out " in err and words in err
    if case == "folder_or_file":  # --force on a regular file: refused, the file kept
        assert "exists and is not a directory" in err and out.read_bytes() == before
    assert not [p for p in tmp_path.rglob("*") if ".merging-" in p.name]


@pytest.mark.parametrize("case", ["under_a_file", "unwritable"])
def test_init_checks_its_folder_before_writing(tmp_path, hmx_fails, case):
    project, words = destinations(tmp_path, "project")[case]
    err = hmx_fails("init", str(project))
    assert f"hmx init: error: {project}: " in err and words in err
    assert not (tmp_path / "a_file" / "sub").exists()


def test_init_quotes_a_folder_with_spaces_in_its_hint(tmp_path, hmx):
    project = tmp_path / "my project"
    code, out, _ = hmx("init", project)
    assert code == 0
    assert (project / "conf" / "experiment" / "mine.yaml").is_file()
    assert f"cd '{project}' && hmx train --config-dir conf experiment=mine" in out


def test_a_project_config_named_like_one_of_hmx_s_is_reported_as_never_read(tmp_path, hmx, hmx_fails, monkeypatch):
    project = tmp_path / "project"
    assert hmx("init", project).code == 0
    mine = project / "conf" / "model" / "tiny.yaml"  # hmx has conf/model/tiny.yaml: Hydra reads that one
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_text("name_or_path: tiny\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    err = hmx_fails("train", "--config-dir", str(project / "conf"), "rubric.path=/nonexistent/r.yaml")
    assert f"hmx: warning: {mine} is never read: hmx's own conf/model/tiny.yaml has the same group and name" in err
    assert "experiment" not in err.split("hmx train: error:")[0]  # the project's own names are not reported

"""Where `hmx eval` takes benchmark files from: config, HMX_DATA_DIR, a checkout's ../shared/data, the Hub."""

from __future__ import annotations

import pytest

from hmx.evaluation.tasks import datasets
from hmx.evaluation.tasks.datasets import DataFileError, data_source


@pytest.fixture
def folders(tmp_path, monkeypatch):
    for name in ("config", "env", "shared"):
        (tmp_path / name).mkdir()
    monkeypatch.delenv("HMX_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "SHARED_DATA_DIR", tmp_path / "shared")  # a checkout with ../shared/data
    return tmp_path


def test_config_then_environment_then_checkout(folders, monkeypatch):
    monkeypatch.setenv("HMX_DATA_DIR", str(folders / "env"))
    assert data_source(str(folders / "config")) == (
        folders / "config",
        f"{folders / 'config'} (from config field 'data_dir')",
    )
    assert data_source(None) == (folders / "env", f"{folders / 'env'} (from HMX_DATA_DIR)")
    monkeypatch.delenv("HMX_DATA_DIR")
    assert data_source(None) == (folders / "shared", f"{folders / 'shared'} (the checkout's ../shared/data)")


def test_an_installed_hmx_without_a_folder_uses_the_hub_and_says_so(folders, monkeypatch):
    monkeypatch.setattr(datasets, "SHARED_DATA_DIR", None)  # what hmx.resources gives outside a checkout
    assert data_source(None) == (None, "the Hugging Face Hub (neither data_dir nor HMX_DATA_DIR is set)")


def test_a_missing_folder_names_where_it_came_from(folders, monkeypatch):
    monkeypatch.setenv("HMX_DATA_DIR", str(folders / "nope"))
    with pytest.raises(DataFileError, match=f"HMX_DATA_DIR: not a directory: {folders / 'nope'}"):
        data_source(None)
    with pytest.raises(DataFileError, match="config field 'data_dir': not a directory"):
        data_source(str(folders / "nope"))

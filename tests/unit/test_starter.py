"""`hmx init` and a user's own config groups: files, commands, paths resolved in the user's project."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

from hmx.commands.init import main, starter_files
from hmx.config import ConfigError, DataConfig, typed_node
from hmx.data import load_prompts
from hmx.resources import CONF_DIR
from hmx.rubrics.loading import load_checked


def test_init_writes_the_starter_each_file_opening_with_its_command(tmp_path, capsys):
    main([str(tmp_path / "proj")])
    written = sorted(str(p.relative_to(tmp_path / "proj")) for p in (tmp_path / "proj").rglob("*") if p.is_file())
    assert written == sorted(starter_files())
    for rel in written:
        text = (tmp_path / "proj" / rel).read_text(encoding="utf-8")
        head = [line for line in text.splitlines() if not line.startswith("# @package")][:2]
        assert any(line.startswith("# hmx ") or "hmx rubric lint" in line for line in head) or rel == "README.md", rel
    assert "hmx train --config-dir conf experiment=mine" in capsys.readouterr().out


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path, capsys):
    taken = tmp_path / "proj" / "rubrics" / "mine.yaml"
    taken.parent.mkdir(parents=True)
    taken.write_text("mine", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "proj")])
    assert exit_.value.code == 2
    assert str(taken) in capsys.readouterr().err
    assert [p for p in (tmp_path / "proj").rglob("*") if p.is_file()] == [taken]


@pytest.fixture(autouse=True)
def _forget_hydra_config():
    yield
    HydraConfig.instance().cfg = None  # type: ignore[assignment]  # as after a @hydra.main run


def compose_with(project_conf: Path | None, *overrides: str):
    search = [f"hydra.searchpath=[file://{project_conf}]"] if project_conf else []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*search, *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # what @hydra.main does before the task runs
    return cfg


def test_a_users_groups_join_hmxs_and_resolve_inside_the_project(tmp_path, monkeypatch):
    project = tmp_path / "proj"
    main([str(project)])
    monkeypatch.chdir(tmp_path)  # anywhere but the project
    cfg = compose_with(project / "conf", "experiment=mine", "model=qwen3-0.6b")
    assert Path(typed_node(cfg, "rubric").path) == project / "rubrics" / "mine.yaml"
    assert Path(typed_node(cfg, "data").path) == project / "data" / "prompts.yaml"
    assert Path(typed_node(cfg, "paths").runs_dir) == project / "outputs" / "runs"
    assert (
        cfg.model.name_or_path == "Qwen/Qwen3-0.6B" and cfg.trainer.max_steps == 20
    )  # hmx's group, the preset's value

    rubric = load_checked(typed_node(cfg, "rubric").path)
    assert rubric.name == "mine" and [c.name for c in rubric.criteria] == ["feelings", "intentions", "self_awareness"]
    data = typed_node(cfg, "data")
    assert (len(load_prompts(data)), len(load_prompts(data, split="eval"))) == (12, 4)

    # With no project config dir, ${hmx_project:} is the working directory.
    cfg = compose_with(None, "rubric.path=${hmx_project:}/r.yaml")
    assert Path(cfg.rubric.path) == tmp_path / "r.yaml"


@pytest.mark.parametrize(
    "text, message",
    [("prompt: hi\n", "expected a non-empty YAML list of rows"), ("- hi\n", "row 0: expected a mapping")],
)
def test_a_bad_yaml_prompt_file_names_the_file_and_row(tmp_path, text, message):
    path = tmp_path / "prompts.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as err:
        load_prompts(DataConfig(path=str(path)))
    assert str(path) in str(err.value) and "data.path" in str(err.value)

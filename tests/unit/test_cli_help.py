"""`hmx --version` and `hmx COMMAND --help`: every command says what it reads and writes."""

from __future__ import annotations

import dataclasses
import sys
from importlib.metadata import version

import pytest

from hmx.cli import COMMANDS, main


def test_version_is_the_installed_distributions(capsys):
    main(["--version"])
    assert capsys.readouterr().out == f"hmx {version('hmx')}\n"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_opens_with_what_the_command_reads_and_writes(command, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # Hydra commands read sys.argv
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    reads, writes = out.index("reads:"), out.index("writes:")
    own_help = "Configuration groups" if COMMANDS[command].hydra else f"usage: hmx {command}"
    assert reads < writes < out.index(own_help)  # the block, then the command's own help
    assert len(out[reads:writes].split()) > 3 and len(out[writes:].split()) > 3


def test_every_table_row_resolves_to_its_object():
    """The lazy "module:name" targets of the three registries import and name what they promise."""
    import importlib
    from pathlib import Path

    from hmx.evaluation.suite import BENCHMARKS
    from hmx.evaluation.tasks import TASKS_DIR
    from hmx.judge.protocol import JudgeBase
    from hmx.judge.registry import EXTERNAL, MODES, PANEL, mode_options

    for spec in COMMANDS.values():
        module, _, function = spec.target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)) and spec.reads and spec.writes
    for mode in MODES.values():
        assert issubclass(mode.load(), JudgeBase), mode.target
    for target in (EXTERNAL, PANEL):
        module, _, name = target.partition(":")
        assert issubclass(getattr(importlib.import_module(module), name), JudgeBase)
    from hmx.config import JudgeConfig, ModeOptions
    from hmx.judge.registry import option_classes

    classes = option_classes()  # judge.<mode> -> the options class its row names, declared in the mode's module
    assert set(classes) == {name for name, mode in MODES.items() if mode.options}
    assert all(
        issubclass(cls, ModeOptions) and cls.__module__.startswith("hmx.judge.modes.") for cls in classes.values()
    )
    for option in mode_options():  # every option is a judge.<field> or judge.<mode>.<field>
        node, _, key = option.rpartition(".")
        assert key in {item.name for item in dataclasses.fields(classes[node] if node else JudgeConfig)}
    tasks = {p.stem for p in Path(TASKS_DIR).glob("*.yaml")}
    assert all(b.task in tasks and b.headline for b in BENCHMARKS.values())


def test_an_unknown_judge_mode_names_the_field_and_the_table(tiny_tokenizer, feel_rubric):
    from hmx.config import ConfigError, JudgeConfig
    from hmx.judge.registry import build_judge

    with pytest.raises(ConfigError, match=r"config field 'judge.mode': must be one of \('logprob', 'generate'"):
        build_judge(feel_rubric, tiny_tokenizer, JudgeConfig(mode="nope"))


def test_suite_benchmarks_unset_means_every_benchmark():
    from omegaconf import OmegaConf

    from hmx.evaluation.suite import BENCHMARKS, suite_config

    assert suite_config(OmegaConf.create({"suite": {"limit": 2}})).benchmarks == list(BENCHMARKS)
    assert suite_config(OmegaConf.create({"suite": {"benchmarks": []}})).benchmarks == []

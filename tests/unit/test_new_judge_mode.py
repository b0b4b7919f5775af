"""Adding a judge mode with options touches three files (issue #26): its module (the judge class and its options
dataclass), its row in hmx.judge.registry.MODES and its preset in conf/judge/. Here the three are a module in a
temporary directory, a row added to the table and a preset directory on Hydra's search path; hmx/config.py is not
touched, and the option is still parsed typed, refused when unknown, offered as an ``hmx rubric`` flag and refused
on resume."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from hmx import cli
from hmx.config import ConfigError, typed_node
from hmx.judge import registry
from hmx.judge.registry import Mode, build_judge, check_judge_config, option_classes, options
from hmx.resources import CONF_DIR
from hmx.resume_policy import judge_rules

MODULE = '''
from dataclasses import dataclass

from hmx.config import ModeOptions
from hmx.judge.protocol import JudgeBase, node_options


@dataclass
class SketchOptions(ModeOptions):
    """``judge.sketch``: a new mode's own options."""

    MINIMUM = {"rounds": 1}
    strength: float = 1.0
    rounds: int = 2


class SketchJudge(JudgeBase):
    def __init__(self, rubric, tokenizer, cfg):
        self.rubric, self.cfg = rubric, cfg
        self.options = node_options(cfg, "sketch", SketchOptions)
'''


@pytest.fixture
def sketch_mode(tmp_path, monkeypatch):
    """File 1: the mode's module; file 2: its row; file 3: its preset (in a directory on the search path)."""
    (tmp_path / "hmx_sketch_mode.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    row = Mode("hmx_sketch_mode:SketchJudge", "a sketch", options="hmx_sketch_mode:SketchOptions")
    monkeypatch.setitem(registry.MODES, "sketch", row)
    (tmp_path / "conf" / "judge").mkdir(parents=True)
    preset = "defaults:\n  - logprob\n  - _self_\nmode: sketch\nsketch:\n  strength: 2.5\n  rounds: 2\n"
    (tmp_path / "conf" / "judge" / "sketch.yaml").write_text(preset)
    return tmp_path / "conf"


def composed(searchpath, *overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=[f"hydra.searchpath=[file://{searchpath}]", *overrides])


def test_a_new_modes_options_are_parsed_typed_from_its_preset_and_the_command_line(sketch_mode, tiny_tokenizer,
                                                                                   feel_rubric):  # fmt: skip
    judge = typed_node(composed(sketch_mode, "judge=sketch"), "judge")
    check_judge_config(judge)
    assert options(judge, "sketch") == option_classes()["sketch"](strength=2.5, rounds=2)
    judge = typed_node(
        composed(sketch_mode, "judge=sketch", "judge.sketch.strength=3", "judge.sketch.rounds=4"), "judge"
    )
    parsed = options(judge, "sketch")
    assert type(parsed).__name__ == "SketchOptions" and isinstance(parsed.strength, float)
    assert (parsed.strength, parsed.rounds) == (3.0, 4)
    built = build_judge(feel_rubric, tiny_tokenizer, judge)  # the mode reads its typed options itself
    assert type(built).__name__ == "SketchJudge" and built.options == parsed


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+judge.sketch.bogus=1", "config field 'judge.sketch.bogus'"),
        ("judge.sketch.strength=strong", "config field 'judge.sketch.strength'"),
        ("judge.sketch.strength=nan", "config field 'judge.sketch.strength': must be a finite number"),
        ("judge.sketch.rounds=0", "config field 'judge.sketch.rounds': must be >= 1, got 0"),
        ("+judge.nosuchmode.x=1", "config field 'judge.nosuchmode': not a judge option or a mode's options node"),
    ],
)
def test_a_new_modes_bad_option_is_refused_naming_its_field(sketch_mode, override, message):
    with pytest.raises(ConfigError) as err:
        check_judge_config(typed_node(composed(sketch_mode, "judge=sketch", override), "judge"))
    assert message in str(err.value)


def test_hmx_train_refuses_a_new_modes_unknown_option_before_any_run_directory(sketch_mode, tmp_path, capsys,
                                                                                cache_dir):  # fmt: skip
    runs = tmp_path / "runs"
    argv = ["train", "debug=smoke", f"hydra.searchpath=[file://{sketch_mode}]", "judge=sketch", "judge.validate=null"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "+judge.sketch.bogus=1", f"paths.runs_dir={runs}", f"paths.cache_dir={cache_dir}"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "config field 'judge.sketch.bogus'" in err and "Traceback" not in err, err
    assert not runs.exists() or not any(runs.iterdir())


def test_a_new_modes_options_are_a_rubric_flag_and_refused_on_resume(sketch_mode):
    from hmx.commands.judge_flags import judge_config
    from hmx.commands.rubric import parse_args

    args = parse_args(
        ["score", "--rubric", "hmx_feel", "--mode", "sketch", "--sketch-strength", "4", "--sketch-rounds", "3"]
    )
    assert (options(judge_config(args), "sketch").strength, options(judge_config(args), "sketch").rounds) == (4.0, 3)
    refused, _ = judge_rules(option_classes())
    assert {"judge.sketch.strength", "judge.sketch.rounds"} <= set(refused)


def test_the_unknown_node_fails_without_the_registry_too():
    """The config layer alone (no mode table) still refuses a plain value where only a mode's node may go."""
    from hmx.config import JudgeConfig, parse_node

    with pytest.raises(ConfigError, match=r"config field 'judge\.sketch': must be a node"):
        parse_node(JudgeConfig, {"sketch": 3}, "judge")


def test_a_parsed_judge_node_is_written_back_as_the_config_has_it():
    """results.json and the resume policy see ``judge.probe.head``, not the schema's untyped ``nodes`` field."""
    from hmx.config import JudgeConfig, node_dict, parse_node

    plain = node_dict(parse_node(JudgeConfig, {"mode": "probe", "probe": {"head": "h.safetensors"}}, "judge"))
    assert plain["probe"] == {"head": "h.safetensors"} and "nodes" not in plain and plain["mode"] == "probe"

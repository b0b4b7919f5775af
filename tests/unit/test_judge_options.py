"""Per-mode judge options nested under the mode's name (``judge.contrastive.scale``), the flat keys of the previous
release kept for one release with a deprecation message, and the resume policy read from the schema (issue #26,
items 2 and 4)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from hmx import cli, config_renames
from hmx.config import (
    ConfigError,
    JudgeConfig,
    ModeOptions,
    parse_node,
    typed_node,
)
from hmx.config_renames import RENAMED, renamed_overrides
from hmx.judge.registry import check_judge_config, option_classes, options
from hmx.resources import CONF_DIR, RUBRICS_DIR
from hmx.resume_policy import config_changes, input_changes, judge_rules

PAIRS = str(RUBRICS_DIR / "hmx_feel.pairs.jsonl")
OLD = RENAMED["JudgeConfig"]
# each deprecated key: a value, the preset that has its mode, and where the value lands now
CASES = {
    "contrastive_scale": ("2.5", "contrastive", lambda j: options(j, "contrastive").scale, 2.5),
    "examples": (PAIRS, "fewshot", lambda j: options(j, "fewshot").examples, PAIRS),
    "examples_per_criterion": ("1", "fewshot", lambda j: options(j, "fewshot").per_criterion, 1),
    "max_rationale_tokens": ("7", "generate", lambda j: options(j, "generate").max_rationale_tokens, 7),
    "probe": ("/some/head.safetensors", "probe", lambda j: options(j, "probe").head, "/some/head.safetensors"),
}


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(config_renames, "_warned", set())  # each message is printed once per process


def composed(*overrides: str, searchpath: Path | None = None):
    extra = [f"hydra.searchpath=[file://{searchpath}]"] if searchpath else []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=[*extra, *renamed_overrides(list(overrides))])


def test_every_deprecated_key_has_a_case_and_lands_in_a_mode_node():
    assert set(CASES) == set(OLD)
    assert {new.split(".")[0] for new in OLD.values()} <= set(option_classes())


def test_the_new_keys_compose_from_the_presets_and_the_command_line(capsys):
    judge = typed_node(composed("judge=contrastive", "judge.contrastive.scale=3"), "judge")
    assert options(judge, "contrastive").scale == 3.0
    judge = typed_node(composed("judge=fewshot", "judge.fewshot.per_criterion=1"), "judge")
    assert Path(options(judge, "fewshot").examples).is_file() and options(judge, "fewshot").per_criterion == 1
    judge = typed_node(composed("judge=probe"), "judge")
    assert Path(options(judge, "probe").head).is_file()
    judge = typed_node(composed("judge=generate", "judge.generate.max_rationale_tokens=9"), "judge")
    assert options(judge, "generate").max_rationale_tokens == 9
    assert "deprecated" not in capsys.readouterr().err


@pytest.mark.parametrize("old", sorted(CASES))
def test_a_deprecated_key_on_the_command_line_still_works_and_says_so(capsys, old):
    value, preset, read, expected = CASES[old]
    cfg = composed(f"judge={preset}", f"judge.{old}={value}")
    assert read(typed_node(cfg, "judge")) == expected
    assert read(typed_node(cfg, "judge")) == expected  # parsed again: no second message
    err = capsys.readouterr().err
    line = f"hmx: config field 'judge.{old}' is deprecated: use judge.{OLD[old]}"
    assert err.count(line) == 1, err
    assert old not in cfg.judge or OmegaConf.is_dict(cfg.judge[old])  # config.yaml records the new key only
    assert OmegaConf.select(cfg, f"judge.{OLD[old]}") == expected


@pytest.mark.parametrize(
    ("old", "value", "message"),
    [
        ("contrastive_scale", "nan", "config field 'judge.contrastive.scale': must be a finite number"),
        ("examples_per_criterion", "-1", "config field 'judge.fewshot.per_criterion': must be >= 0, got -1"),
        ("max_rationale_tokens", "0", "config field 'judge.generate.max_rationale_tokens': must be >= 1, got 0"),
        ("probe", "/no/such/head.safetensors", "config field 'judge.probe.head': /no/such/head.safetensors"),
    ],
)
def test_hmx_train_takes_a_deprecated_key_and_checks_it_at_its_new_place(capsys, tmp_path, cache_dir, old, value,
                                                                         message):  # fmt: skip
    """The real command line (``hmx train``): the old key reaches its new field, whose check then fails (exit 2)."""
    preset = CASES[old][1]
    argv = ["train", "debug=smoke", f"judge={preset}", f"judge.{old}={value}", f"paths.runs_dir={tmp_path}"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, f"paths.cache_dir={cache_dir}", "judge.validate=null"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err, err
    assert f"hmx: config field 'judge.{old}' is deprecated: use judge.{OLD[old]}" in err
    assert message in err
    assert not any(tmp_path.iterdir())  # no run directory


def test_deprecated_keys_in_a_users_yaml_preset(tmp_path, capsys):
    (tmp_path / "judge").mkdir()
    (tmp_path / "judge" / "mine.yaml").write_text(
        "defaults:\n  - logprob\n  - _self_\nmode: contrastive\ncontrastive_scale: 4.0\nprobe: null\n"
        f"examples: {PAIRS}\nexamples_per_criterion: 3\nmax_rationale_tokens: 12\n"
    )
    cfg = composed("judge=mine", searchpath=tmp_path)
    judge = typed_node(cfg, "judge")
    assert (options(judge, "contrastive").scale, options(judge, "probe").head, options(judge, "fewshot").examples) == (
        4.0,
        None,
        PAIRS,
    )
    assert (options(judge, "fewshot").per_criterion, options(judge, "generate").max_rationale_tokens) == (3, 12)
    err = capsys.readouterr().err
    assert all(f"'judge.{old}' is deprecated: use judge.{new}" in err for old, new in OLD.items()), err


def test_an_unknown_nested_key_names_its_field(capsys):
    with pytest.raises(ConfigError, match=r"config field 'judge\.contrastive\.bogus'"):
        check_judge_config(parse_node(JudgeConfig, {"contrastive": {"bogus": 1}}, "judge"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "debug=smoke", "judge=contrastive", "+judge.contrastive.bogus=1"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "config field 'judge.contrastive.bogus'" in err and "Traceback" not in err


def test_a_string_for_a_nested_node_other_than_probe_fails_naming_it():
    with pytest.raises(ConfigError, match=r"config field 'judge\.contrastive': must be a node"):
        parse_node(JudgeConfig, {"contrastive": 3.0}, "judge")


def test_the_resume_policy_refuses_every_mode_option_and_applies_the_engine_options():
    refused, applied = judge_rules(option_classes())
    for node, schema in option_classes().items():
        for name in (item.name for item in fields(schema)):
            assert f"judge.{node}.{name}" in refused
    assert set(applied) == {"judge.batch_size", "judge.max_batch_tokens", "judge.prefix_cache"}


def test_an_option_declared_bookkeeping_is_applied_on_resume():
    @dataclass
    class Sketch(ModeOptions):
        BOOKKEEPING = ("verbose",)
        strength: float = 1.0
        verbose: bool = False

    refused, applied = judge_rules({"sketch": Sketch})
    assert refused == ("judge.sketch.strength",) and "judge.sketch.verbose" in applied


def flat_form(judge: dict) -> dict:
    """A judge node as the previous release wrote it in config.yaml: every moved key back at its flat place."""
    judge = {**judge}
    for old, new in OLD.items():
        node, key = new.split(".")
        if isinstance(judge.get(node), dict) and key in judge[node]:
            value = judge[node].pop(key)
            if not judge[node]:
                del judge[node]
            judge[old] = value
    return judge


def test_a_run_recorded_with_flat_keys_resumes_without_a_refused_change(tmp_path, capsys):
    cfg = composed("judge=probe")
    recorded = OmegaConf.to_container(cfg, resolve=True)
    recorded["judge"] = flat_form(recorded["judge"])
    assert "probe" in recorded["judge"] and isinstance(recorded["judge"]["probe"], str)
    previous = tmp_path / "config.yaml"
    previous.write_text(OmegaConf.to_yaml(OmegaConf.create(recorded)))
    typed_node(cfg, "judge")
    assert config_changes(previous, cfg, option_classes()) == {"applied": [], "warned": []}
    assert "deprecated" not in capsys.readouterr().err  # the recorded file is migrated silently
    moved = composed("judge=probe", "judge.probe.head=/another/head.safetensors")
    with pytest.raises(ConfigError, match=r"config field 'judge\.probe\.head': a resumed run cannot change"):
        config_changes(previous, moved, option_classes())
    scaled = composed("judge=probe", "+judge.contrastive.scale=3")
    with pytest.raises(ConfigError, match=r"config field 'judge\.contrastive\.scale'"):
        config_changes(previous, scaled, option_classes())


def test_an_option_node_the_old_preset_lacked_compares_as_its_default(tmp_path):
    """The previous release's logprob preset had no max_rationale_tokens; the new one has judge.generate: a run
    recorded with it is not refused over a default it never set."""
    cfg = composed("judge=logprob")
    recorded = OmegaConf.to_container(cfg, resolve=True)
    recorded["judge"] = flat_form(recorded["judge"])
    del recorded["judge"]["max_rationale_tokens"]
    previous = tmp_path / "config.yaml"
    previous.write_text(OmegaConf.to_yaml(OmegaConf.create(recorded)))
    assert config_changes(previous, cfg, option_classes()) == {"applied": [], "warned": []}


def test_an_old_runs_input_hashes_are_checked_under_the_new_field_names(tmp_path):
    old = {"judge.probe": {"path": "h.safetensors", "sha256": "a" * 64}}
    now = {"judge.probe.head": {"path": "h.safetensors", "sha256": "b" * 64}}
    with pytest.raises(ConfigError, match=r"config field 'judge\.probe\.head': h\.safetensors was edited"):
        input_changes(old, now, tmp_path / "inputs.json")
    same = {"judge.probe.head": {"path": "h.safetensors", "sha256": "a" * 64}}
    assert input_changes(old, same, tmp_path / "inputs.json") == {"applied": [], "warned": []}


@pytest.mark.parametrize("spelling", ["new", "old"])
def test_rubric_flags_come_from_the_schema_with_the_old_spellings_as_aliases(spelling):
    from hmx.commands.judge_flags import judge_config
    from hmx.commands.rubric import parse_args

    flags = {
        "new": ["--contrastive-scale", "3", "--fewshot-examples", PAIRS, "--fewshot-per-criterion", "1",
                "--generate-max-rationale-tokens", "5", "--probe-head", "h.safetensors"],
        "old": ["--contrastive-scale", "3", "--examples", PAIRS, "--examples-per-criterion", "1",
                "--max-rationale-tokens", "5", "--probe", "h.safetensors"],
    }[spelling]  # fmt: skip
    args = parse_args(["score", "--rubric", "hmx_feel", "--mode", "fewshot", *flags])
    cfg = judge_config(args)
    assert (cfg.mode, options(cfg, "contrastive").scale, options(cfg, "fewshot").examples) == ("fewshot", 3.0, PAIRS)
    assert options(cfg, "fewshot").per_criterion == 1
    assert (options(cfg, "generate").max_rationale_tokens, options(cfg, "probe").head) == (5, "h.safetensors")
    preset = parse_args(["validate", "--pairs", PAIRS, "--judge", "probe", "--batch-size", "2"])
    kept = judge_config(preset, typed_node(composed("judge=probe"), "judge"))
    assert (
        kept.batch_size == 2 and Path(options(kept, "probe").head).is_file()
    )  # a flag left out keeps the preset's value


def test_eval_reads_an_old_runs_reward_judge_silently(tmp_path, capsys):
    from hmx.evaluation.instrument import reward_judge

    (tmp_path / "config.yaml").write_text(
        "judge:\n  mode: probe\n  probe: /old/head.safetensors\n  contrastive_scale: 2.0\n"
    )
    judge, source = reward_judge(JudgeConfig(), tmp_path)
    assert (options(judge, "probe").head, options(judge, "contrastive").scale, source) == (
        "/old/head.safetensors",
        2.0,
        str(tmp_path / "config.yaml"),
    )
    assert "deprecated" not in capsys.readouterr().err


def test_reporting_keys_are_applied_on_resume_without_a_warning(tmp_path):
    """before_after only chooses what the end of the run prints (before = adapter off): it was "warned" before."""
    cfg = composed("judge=probe")
    previous = tmp_path / "config.yaml"
    previous.write_text(OmegaConf.to_yaml(OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))))
    changed = composed("judge=probe", "before_after=1", "audit.window=4")
    assert config_changes(previous, changed, option_classes()) == {
        "applied": ["audit.window", "before_after"],
        "warned": [],
    }

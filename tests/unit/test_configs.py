"""Every shipped config composes, validates and maps onto trl.GRPOConfig / peft.LoraConfig."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from hmx.config import ConfigError, typed_node
from hmx.judge.registry import options
from hmx.models import lora_config
from hmx.resources import CONF_DIR
from hmx.train import grpo_args

TRAIN_DEFAULTS = yaml.safe_load((CONF_DIR / "train.yaml").read_text())["defaults"]
GROUPS = sorted(group for item in TRAIN_DEFAULTS if isinstance(item, dict) for group in item if group != "hydra")
OPTIONS = [(group, f.stem) for group in GROUPS for f in sorted((CONF_DIR / group).glob("*.yaml"))]
PAPER_MODELS = ["qwen3_0.6b", "qwen3_4b", "qwen3_8b", "gemma2_2b", "llama3.2_3b"]


def test_every_config_opens_with_its_command():
    for path in sorted(CONF_DIR.rglob("*.yaml")):
        first_lines = [line for line in path.read_text().splitlines()[:3] if line.startswith("#")]
        assert any("hmx " in line or "Hydra" in line for line in first_lines), path


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_and_validates(make_cfg, tmp_path, group, option):
    cfg = make_cfg(f"{group}={option}")
    for node in ("model", "data", "rubric", "judge", "guards", "logger", "paths"):
        typed_node(cfg, node)
    lora_config(dict(cfg.peft))
    args = grpo_args(cfg, tmp_path / "run", ["none"], [1.0, 1.0, 1.0])
    assert args.num_generations >= 2


@pytest.mark.parametrize("model", PAPER_MODELS)
def test_paper_presets_forward_and_reverse(make_cfg, model):
    forward = make_cfg(f"experiment=hmx_feel_{model}")
    reverse = make_cfg(f"experiment=hmx_feel_{model}_reverse")
    assert forward.rubric.direction == "forward"
    assert reverse.rubric.direction == "reverse"
    assert forward.model.name_or_path == reverse.model.name_or_path != "tiny"
    assert forward.trainer == reverse.trainer  # a reverse preset is a one-line diff from its parent
    assert forward.trainer.bf16 and forward.trainer.activation_checkpointing


def test_default_is_smollm2_with_the_shipped_validated_probe_judge(make_cfg):
    cfg = make_cfg()
    judge = typed_node(cfg, "judge")
    assert cfg.model.name_or_path == "HuggingFaceTB/SmolLM2-135M-Instruct" and cfg.model.packaged
    assert cfg.logger.backend == "wandb" and judge.mode == "probe"
    assert (
        Path(options(judge, "probe").head).is_file()
        and Path(judge.validate).is_file()
        and judge.validate_split == "test"
    )
    assert cfg.trainer.max_steps * cfg.trainer.per_device_train_batch_size <= 64  # make train: minutes on 2 cores
    assert cfg.before_after == 3


@pytest.mark.parametrize("preset", ["tiny", "smoke", "frozen_judge"])
def test_debug_presets_train_the_tiny_model_with_its_trainer(make_cfg, preset):
    cfg = make_cfg(f"debug={preset}")
    assert cfg.model.name_or_path == "tiny" and cfg.judge.mode == "logprob" and cfg.judge.probe.head is None
    assert cfg.trainer.learning_rate == 1.0e-2  # conf/trainer/tiny.yaml: the tiny model moves at this rate


def test_unknown_override_key_fails_with_hydras_message():
    with (
        initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"),
        pytest.raises(ConfigCompositionException, match="Could not override 'trainer.learning_rat'"),
    ):
        compose(config_name="train", overrides=["trainer.learning_rat=1"])


def test_unknown_key_in_typed_node_names_it(make_cfg):
    cfg = make_cfg("+judge.temprature=0.5")
    with pytest.raises(ConfigError, match="judge.*temprature"):
        typed_node(cfg, "judge")


def test_bad_choice_names_the_field(make_cfg):
    with pytest.raises(ConfigError, match=r"judge\.weights"):
        typed_node(make_cfg("judge.weights=teacher"), "judge")


def test_unknown_grpo_field_names_the_node(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="trainer.*num_generation"):
        grpo_args(make_cfg("+trainer.num_generation=4"), tmp_path, ["none"], [1.0])


@pytest.mark.parametrize("suite", sorted(f.stem for f in (CONF_DIR / "suite").glob("*.yaml")))
def test_every_eval_suite_composes_and_validates(make_cfg, suite):
    from hmx.evaluation.suite import suite_config

    cfg = make_cfg(f"suite={suite}", config_name="eval")
    assert suite_config(cfg).benchmarks


def test_the_external_judge_takes_a_model_preset(make_cfg):
    """A shipped model preset lands whole at the external judge's key, its packaged GGUF block too."""
    from hmx.evaluation.suite import suite_config

    cfg = make_cfg("+model@suite.expression.external_judge=smollm2-135m", config_name="eval")
    judge = suite_config(cfg).expression.external_judge
    preset = yaml.safe_load((CONF_DIR / "model" / "smollm2-135m.yaml").read_text())
    assert judge is not None and judge.name_or_path == preset["name_or_path"]
    assert judge.packaged is not None and judge.packaged.sha256 == preset["packaged"]["sha256"]


def test_the_external_judge_takes_a_model_node(make_cfg):
    from hmx.evaluation.suite import suite_config

    cfg = make_cfg("suite.expression.external_judge={name_or_path: tiny}", config_name="eval")
    judge = suite_config(cfg).expression.external_judge
    assert judge is not None and judge.name_or_path == "tiny"


@pytest.mark.parametrize(
    ("node", "value", "field"),
    [
        ("judge", {"batch_sizee": 1}, "judge.batch_sizee"),
        ("judge", {"external": {"timeoutt": 1}}, "judge.external.timeoutt"),
        ("suite", {"limit": "many"}, "suite.limit"),
        ("probes", {"stepz": 1}, "probes.stepz"),
    ],
)
def test_one_parser_names_the_field_of_every_node(node, value, field):
    from omegaconf import OmegaConf

    from hmx.evaluation.probes import probes_config
    from hmx.evaluation.suite import suite_config

    parse = {"judge": lambda c: typed_node(c, "judge"), "suite": suite_config, "probes": probes_config}[node]
    with pytest.raises(ConfigError, match=rf"^config field '{re.escape(field)}': "):
        parse(OmegaConf.create({node: value}))

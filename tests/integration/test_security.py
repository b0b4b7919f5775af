"""Security: no remote code unless asked, safe YAML, sandboxed templates, safetensors only.

The W&B-key test (a real run, every file of the run directory searched) is in
tests/integration/test_resume.py, whose real runs it shares.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from safetensors.torch import load_file
from transformers import TrainerCallback

from hmx.config import ConfigError, ModelConfig, typed_node
from hmx.models import load_model, load_tokenizer
from hmx.resources import CONF_DIR, RUBRICS_DIR
from hmx.runs import TrainedRun, load_adapter_model

RUBRIC = (RUBRICS_DIR / "hmx_feel.yaml").read_text(encoding="utf-8")
MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))


def train_fails(tmp_path: Path, cache_dir: Path, hmx_fails, *overrides: str) -> str:
    runs = tmp_path / "runs"
    argv = [
        "train",
        "debug=tiny",
        f"paths.runs_dir={runs}",
        f"paths.cache_dir={cache_dir}",
        "logger=none",
        "run_name=bad",
    ]
    err = hmx_fails(*argv, *overrides)
    assert "hmx train: error: " in err, err
    assert not (runs / "bad").exists()
    return err


@pytest.mark.parametrize("model", MODELS)
def test_trust_remote_code_is_off_in_every_model_config(model):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", [f"model={model}"])
    assert typed_node(cfg, "model").trust_remote_code is False
    assert ModelConfig().trust_remote_code is False


def test_custom_code_in_a_model_directory_never_runs_by_default(tmp_path, tiny_dir, monkeypatch):
    import transformers.dynamic_module_utils as dynamic

    model_dir, marker = tmp_path / "custom", tmp_path / "EXECUTED"
    shutil.copytree(tiny_dir, model_dir)
    (model_dir / "custom.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM\n"
        "class CustomTokenizer(PreTrainedTokenizerFast): pass\n"
        "class CustomConfig(Qwen3Config): pass\n"
        "class CustomModel(Qwen3ForCausalLM): pass\n",
        encoding="utf-8",
    )
    for name, auto_map in [
        ("tokenizer_config.json", {"AutoTokenizer": ["custom.CustomTokenizer", None]}),
        ("config.json", {"AutoConfig": "custom.CustomConfig", "AutoModelForCausalLM": "custom.CustomModel"}),
    ]:
        config = json.loads((model_dir / name).read_text())
        (model_dir / name).write_text(json.dumps({**config, "auto_map": auto_map}))
    cfg = ModelConfig(name_or_path=str(model_dir))
    load_tokenizer(cfg, str(tmp_path)), load_model(cfg, str(tmp_path))  # the built-in Qwen3 classes
    assert not marker.exists()
    # the control: asked for, the same directory's code does run
    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    load_tokenizer(ModelConfig(name_or_path=str(model_dir), trust_remote_code=True), str(tmp_path))
    assert marker.exists()


def test_python_yaml_tags_fail_cleanly_and_run_nothing(tmp_path, cache_dir, hmx_fails):
    marker = tmp_path / "EXECUTED"
    rubric = tmp_path / "tagged.yaml"
    rubric.write_text(RUBRIC.replace("name: hmx_feel", f'name: !!python/object/apply:os.system ["touch {marker}"]'))
    assert "!!python" in rubric.read_text()
    err = train_fails(tmp_path, cache_dir, hmx_fails, f"rubric.path={rubric}")
    assert str(rubric) in err and "not valid YAML" in err
    assert not marker.exists()


def test_template_reaching_for_python_internals_fails_cleanly(tmp_path, cache_dir, hmx_fails):
    rubric = tmp_path / "internals.yaml"
    template = "<completion>{{ completion }}</completion> {{ ''.__class__.__mro__[1].__subclasses__() }}"
    rubric.write_text(RUBRIC + f"judge_template: {template!r}\n")
    err = train_fails(tmp_path, cache_dir, hmx_fails, f"rubric.path={rubric}")
    assert str(rubric) in err and "judge_template" in err and "unsafe" in err


def test_pickled_model_weights_are_refused(tmp_path, cache_dir, tiny_dir, hmx_fails):
    model_dir = tmp_path / "pickled"
    shutil.copytree(tiny_dir, model_dir)
    weights = model_dir / "model.safetensors"
    torch.save(load_file(weights), model_dir / "pytorch_model.bin")
    weights.unlink()
    err = train_fails(tmp_path, cache_dir, hmx_fails, f"model.name_or_path={model_dir}", "debug=smoke")
    assert "model.name_or_path" in err and str(model_dir) in err


def test_pickled_adapter_weights_are_refused(tmp_path, cache_dir):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": "tiny"}))
    torch.save({}, adapter / "adapter_model.bin")
    with pytest.raises(ConfigError, match="adapter_model.safetensors; hmx loads adapter weights from safetensors only"):
        load_adapter_model(TrainedRun(adapter, ModelConfig(), str(cache_dir)))


class LeakingCallback(TrainerCallback):
    """A crash whose message carries a secret, as an exception raised from a server's reply can."""

    def __init__(self, secret: str):
        self.secret = secret

    def on_step_end(self, args, state, control, **kwargs):
        raise RuntimeError(f"the server answered: Authorization: {self.secret}")


def test_a_crash_that_carries_a_secret_leaves_a_redacted_failed_file(make_cfg, monkeypatch):
    from hmx.train import run

    secret = "hf_secret_in_a_traceback_0123456789"
    monkeypatch.setenv("HF_TOKEN", secret)
    cfg = make_cfg("debug=smoke", "logger=none", "trainer.max_steps=1", "run_name=leaky")
    with pytest.raises(RuntimeError):
        run(cfg, callbacks=[LeakingCallback(secret)])
    failed = Path(cfg.paths.runs_dir) / "leaky" / "FAILED"
    text = failed.read_text(encoding="utf-8")  # before: the traceback verbatim, the token in it
    assert "RuntimeError: the server answered: Authorization: ***" in text and secret not in text

"""The reward-hacking audit in a real tiny training run: logged every step, plotted, summarised."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from hmx.config import AuditConfig, ConfigError, typed_node
from hmx.judge.registry import build_judge
from hmx.judge.validity.accuracy import validate
from hmx.models import load_model, load_tokenizer
from hmx.resources import RUBRICS_DIR
from hmx.rewards.audit import audit_pairs, build_audit
from hmx.rubrics.pairs import PairError
from hmx.rubrics.schema import load_rubric
from hmx.tracking import read_metrics, reward_figure, run_settings
from hmx.train import run


def test_the_audit_runs_in_every_training_run(make_cfg, capsys):
    minimal = RUBRICS_DIR / "hmx_feel.shift.pairs.jsonl"  # 18 pairs, whichever file audit.pairs=auto finds
    audit = ["audit.minimal_steps=2", f"audit.pairs={minimal}", "audit.split=minimal"]
    cfg = make_cfg("debug=smoke", "trainer.max_steps=4", "trainer.learning_rate=0.05", *audit)
    run_dir = run(cfg)
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward" in r]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for row in rows:  # every step: agreement with the frozen judge and the reward spread
        assert -1.0 <= row["audit/base_agreement"] <= 1.0 and row["audit/reward_spread"] > 0
    assert rows[0]["audit/base_agreement"] == pytest.approx(1.0, abs=1e-6)  # LoRA B starts at zero: same judge
    assert "audit/lexical_index" not in rows[0]  # 2 groups of 4 in the window: too few to fit
    assert all(0.0 <= r["audit/lexical_index"] <= 1.0 for r in rows[1:])  # 4+ groups from step 2
    assert [r["step"] for r in rows if "audit/minimal_accuracy" in r] == [1, 3]  # after 0 and 2 updates
    final = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward" not in r and "audit/minimal_accuracy" in r]
    assert [r["step"] for r in final] == [4]  # and the final weights, after the last update: their own row
    assert 0.0 <= final[0]["audit/minimal_accuracy"] <= 1.0

    # the first minimal-pair accuracy is the untrained model's: measured again from scratch, it agrees
    rubric = load_rubric(RUBRICS_DIR / "hmx_feel.yaml")
    pairs = audit_pairs(AuditConfig(pairs=str(minimal), split="minimal"), rubric, RUBRICS_DIR / "hmx_feel.yaml")
    assert len(pairs) == 18
    model_cfg, judge_cfg = typed_node(cfg, "model"), typed_node(cfg, "judge")
    tokenizer = load_tokenizer(model_cfg, cfg.paths.cache_dir)
    model = load_model(model_cfg, cfg.paths.cache_dir).eval()
    build = lambda view: build_judge(view, tokenizer, judge_cfg)  # noqa: E731
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as in training: TRL's bf16 default autocasts on CPU too
        again = validate(build, rubric, model, pairs, torch.device("cpu"), "logprob", "tiny")
    assert rows[0]["audit/minimal_accuracy"] == pytest.approx(again.overall.accuracy, abs=1.5 / 18)

    # rewards.png: judge criteria, guards, the audit and the reward spread in their own panels
    assert (run_dir / "rewards.png").is_file()
    fig = reward_figure(read_metrics(run_dir / "metrics.jsonl"), *run_settings(run_dir / "config.yaml"))
    assert [ax.get_title(loc="left").split(":")[0] for ax in fig.axes] == [
        "Reward",
        "Judge",
        "Guards",
        "Audit",
        "Audit",
    ]
    assert "judge self/logprob with policy weights" in fig._suptitle.get_text()
    out = capsys.readouterr().out
    assert "audit (docs/training.md#reward-hacking-audit):" in out  # the end-of-run summary
    for signal in ("base_agreement", "lexical_index", "minimal_accuracy", "reward_spread"):
        assert f"  {signal} " in out
    first, last = rows[0]["audit/minimal_accuracy"], final[0]["audit/minimal_accuracy"]
    assert f"  minimal_accuracy  {first:.3f} -> {last:.3f}" in out  # the summary's last value: the final weights


def test_the_audit_does_not_change_training(make_cfg):
    """Monitoring only: no global random draw, the model back in train mode: the same adapter with or without it."""
    common = ("debug=smoke", "trainer.max_steps=2", "trainer.learning_rate=0.05")
    audited = run(make_cfg(*common, "run_name=audited", "audit.minimal_steps=1"))
    plain = run(make_cfg(*common, "run_name=plain", "audit.steps=0", "audit.minimal_steps=0"))
    assert not any(k.startswith("audit/b") for r in read_metrics(plain / "metrics.jsonl") for k in r)
    a, b = (load_file(d / "adapter" / "adapter_model.safetensors") for d in (audited, plain))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(a[k].abs().sum() > 0 for k in a if "lora_B" in k)  # it did train


def test_a_frozen_judge_agrees_with_itself_without_a_second_pass(make_cfg, tiny_tokenizer):
    rubric = load_rubric(RUBRICS_DIR / "hmx_feel.yaml")
    judge_cfg = typed_node(make_cfg("judge.weights=base"), "judge")
    audit = build_audit(AuditConfig(), rubric, tiny_tokenizer, judge_cfg, lambda: None, [])
    assert audit.base_judge is None  # 1 by construction: no extra judge pass
    judge_cfg.weights = "policy"
    assert build_audit(AuditConfig(), rubric, tiny_tokenizer, judge_cfg, lambda: None, []).base_judge is not None


def test_bad_audit_settings_fail_before_the_run_directory(make_cfg, tmp_path):
    with pytest.raises(PairError, match="missing.jsonl: labelled pair file not found"):
        run(make_cfg("debug=smoke", "audit.minimal_steps=1", f"audit.pairs={tmp_path / 'missing.jsonl'}"))
    with pytest.raises(ConfigError, match=r"audit\.window': must be >= 1"):
        run(make_cfg("debug=smoke", "audit.window=0"))
    assert not (tmp_path / "runs").exists()

"""The end of every ``hmx train``: three held-out prompts answered before and after, and the judge's validity."""

from __future__ import annotations

import json
from dataclasses import replace

from omegaconf import OmegaConf

from hmx.before_after import answer, pick_prompts
from hmx.config import DataConfig, typed_node
from hmx.models import load_model, load_tokenizer
from hmx.resources import ROOT
from hmx.rubrics.schema import Rubric


def shipped_data() -> DataConfig:
    return DataConfig(path=str(ROOT / "data" / "prompts" / "hmx_prompts.jsonl"), split_column="split")


def test_the_rule_picks_each_criterions_first_held_out_prompt(feel_rubric: Rubric):
    chosen = pick_prompts(shipped_data(), feel_rubric, 3)
    assert [p.id for p in chosen] == ["feel-004", "intent-004", "self-004"]  # docs/preregistration.md
    assert [p.category for p in chosen] == ["feelings", "intentions", "self_awareness"]
    assert pick_prompts(shipped_data(), feel_rubric, 0) == []
    five = pick_prompts(shipped_data(), feel_rubric, 5)  # then file order
    assert [p.id for p in five][:3] == ["feel-004", "intent-004", "self-004"] and len({p.id for p in five}) == 5


def test_without_categories_the_first_prompts_in_file_order(tmp_path, feel_rubric: Rubric):
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps({"question": f"Question {i}?"}) + "\n" for i in range(6)))
    data = replace(shipped_data(), path=str(path), prompt_column="question", split_column=None, eval_split=None)
    assert [p.text for p in pick_prompts(data, feel_rubric, 3)] == ["Question 0?", "Question 1?", "Question 2?"]


def test_a_run_writes_before_and_after_and_before_is_the_base_model(smoke_run, cache_dir):
    rows = [json.loads(line) for line in (smoke_run / "before_after.jsonl").read_text().splitlines()]
    assert [r["prompt"][:30] for r in rows] == [p.text[:30] for p in pick_prompts(shipped_data(), _rubric(), 3)]
    table = (smoke_run / "before_after.md").read_text()
    assert table.count("\n| ") == 1 + len(rows) and "3 steps" in table
    # "before" is the base model's own greedy answer (the adapter off), recomputed here without any adapter
    cfg = OmegaConf.load(smoke_run / "config.yaml")
    model_cfg = typed_node(cfg, "model")
    base, tokenizer = load_model(model_cfg, str(cache_dir)).eval(), load_tokenizer(model_cfg, str(cache_dir))
    prompts = pick_prompts(typed_node(cfg, "data"), _rubric(), 3)
    assert answer(base, tokenizer, prompts, 64) == [r["before"] for r in rows]
    assert any(r["after"] != r["before"] for r in rows)  # three steps at lr 1e-2 moved the tiny model's answers


def _rubric() -> Rubric:
    from hmx.resources import RUBRICS_DIR
    from hmx.rubrics.schema import load_rubric

    return load_rubric(RUBRICS_DIR / "hmx_feel.yaml")


def test_the_report_ends_with_the_judges_validity_and_the_answers(tmp_path, cache_dir, tiny_probe, capsys):
    from hmx import cli

    argv = ["train", "debug=smoke", "judge=probe", f"judge.probe={tiny_probe}", "trainer.max_steps=1"]
    cli.main([*argv, f"paths.runs_dir={tmp_path}", f"paths.cache_dir={cache_dir}", "run_name=judged"])
    out = capsys.readouterr().out
    assert "probe mode, policy weights" in out and f"head {tiny_probe.name}: fitted on 9 pairs" in out
    assert "validity on 75 held-out pairs" in out and "hmx_feel.pairs.jsonl, split test" in out
    assert "before → after training" in out and out.count("    before: ") == 3
    assert (tmp_path / "judged" / "before_after.md").is_file()

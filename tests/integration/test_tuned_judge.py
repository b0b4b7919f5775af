"""Judge fine-tuning on the tiny model: ``hmx rubric tune-judge`` trains, writes, and validate merges its adapter."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from hmx.config import ConfigError, JudgeConfig, typed_node
from hmx.judge.modes.logprob import LogprobJudge
from hmx.judge.tuned_adapter import load_adapter, merge_judge_adapter, resolve_adapter_path, save_adapter
from hmx.judge.validity.judge_tuning import TuneSettings, evaluate, split_by_message, tune_judge
from hmx.resources import RUBRICS_DIR
from hmx.rubrics.pairs import load_pairs

PAIRS = RUBRICS_DIR / "hmx_feel.pairs.jsonl"
SHIPPED = RUBRICS_DIR / "tuned" / "hmx_feel.smollm2-135m.safetensors"


def test_tuning_really_trains_the_judge_and_leaves_the_model_as_it_was(
    tmp_path, feel_rubric, tiny_model, tiny_tokenizer
):
    pairs = load_pairs(PAIRS, feel_rubric, "dev")[:24]
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    settings = TuneSettings(epochs=4, lr=1e-2, pairs_per_step=8, heldout=0.0)
    result = tune_judge(feel_rubric, tiny_tokenizer, tiny_model, pairs, torch.device("cpu"), settings)
    losses = [row["fit_loss"] for row in result.history[1:]]
    assert losses[-1] < losses[0]  # the Bradley-Terry loss falls
    assert result.best_epoch == 4 and result.fit_pairs == 24 and result.heldout_pairs == 0
    lora_b = [v for k, v in result.tensors.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: the adapter was trained
    after = tiny_model.state_dict()
    assert set(after) == set(before) and all(torch.equal(before[k], after[k]) for k in before)  # unloaded
    # merged into a copy of the weights, the judge ranks its training pairs better than the untuned one
    judge = LogprobJudge(feel_rubric, tiny_tokenizer, JudgeConfig(batch_size=16))
    untuned, _ = evaluate(judge, tiny_model, pairs, torch.device("cpu"), 8)
    save_adapter(tmp_path / "a.safetensors", result.tensors, result.lora, {"model": "tiny"})
    merged = merge_judge_adapter(copy.deepcopy(tiny_model), tmp_path / "a.safetensors")
    assert not any("lora" in name for name, _ in merged.named_modules())  # plain weights, no second copy
    tuned, _ = evaluate(judge, merged, pairs, torch.device("cpu"), 8)
    assert tuned > untuned, (tuned, untuned)


def test_a_judge_that_ties_every_pair_stops_tuning_with_the_epoch_marked(feel_rubric, tiny_model, tiny_tokenizer):
    """A judge whose label logits are the same for every reply: every pair ties, no gradient is left."""
    flat = copy.deepcopy(tiny_model)
    with torch.no_grad():
        flat.get_output_embeddings().weight.zero_()  # uniform label distribution whatever the reply
    pairs = load_pairs(PAIRS, feel_rubric, "dev")[:16]
    settings = TuneSettings(epochs=3, pairs_per_step=8, heldout=0.0)
    result = tune_judge(feel_rubric, tiny_tokenizer, flat, pairs, torch.device("cpu"), settings)
    assert [row["epoch"] for row in result.history] == [0, 1]  # stopped after the first tied epoch
    assert result.history[1]["collapsed"] == 1.0 and result.history[1]["fit_loss"] == pytest.approx(math.log(2))
    ok = tune_judge(feel_rubric, tiny_tokenizer, tiny_model, pairs, torch.device("cpu"), settings)
    assert len(ok.history) == 4 and not any("collapsed" in row for row in ok.history)  # a live judge runs on


def test_held_out_messages_are_never_fitted_on(feel_rubric):
    pairs = load_pairs(PAIRS, feel_rubric, "dev")
    fit, held = split_by_message(pairs, 0.25)
    assert held and fit and not {p.prompt for p in fit} & {p.prompt for p in held}
    assert len(fit) + len(held) == len(pairs) and split_by_message(pairs, 0.25) == (fit, held)


def test_tune_judge_writes_an_adapter_that_validate_merges(hmx, tmp_path, cache_dir, feel_rubric):
    out = tmp_path / "judge" / "tiny.safetensors"
    tune = ["rubric", "tune-judge", "--rubric", "hmx_feel", "--model", "tiny", "--cache-dir", str(cache_dir)]
    code, stdout, err = hmx(
        *tune, "--pairs", str(PAIRS), "--split", "dev", "--out", str(out), "--epochs", "2", "--lr", "1e-2"
    )
    assert code == 0, err
    assert out.is_file() and not list(out.parent.glob("*.partial")) and "wrote" in stdout
    tensors, lora, info = load_adapter(out)
    assert info["rubric"] == "hmx_feel" and info["split"] == "dev" and info["fit_pairs"] + info["heldout_pairs"] == 75
    assert lora["r"] == 8 and len(info["history"]) == 3
    validate = ["rubric", "validate", "--rubric", "hmx_feel", "--model", "tiny", "--cache-dir", str(cache_dir)]
    validate += ["--pairs", str(PAIRS), "--split", "test", "--json"]
    code, plain, err = hmx(*validate)
    assert code == 0, err
    code, merged, err = hmx(*validate, "--adapter", str(out))
    assert code == 0, err
    assert json.loads(plain)["overall"] != json.loads(merged)["overall"]  # the adapter changed the judge
    # the file is refused rather than overwritten, before any work
    code, _, err = hmx(*tune, "--pairs", str(PAIRS), "--out", str(out))
    assert code == 2 and "the file exists; pass --force" in err


def test_the_epoch_is_picked_on_another_split_and_a_shared_message_is_refused(hmx, tmp_path, cache_dir):
    tune = ["rubric", "tune-judge", "--rubric", "hmx_feel", "--model", "tiny", "--cache-dir", str(cache_dir)]
    out = tmp_path / "held.safetensors"
    code, stdout, err = hmx(
        *tune, "--pairs", str(PAIRS), "--split", "dev", "--heldout-split", "test", "--out", str(out), "--epochs", "1"
    )
    assert code == 0, err
    _, _, info = load_adapter(out)
    assert info["heldout_split"] == "test" and info["fit_pairs"] == 75 and info["heldout_pairs"] == 75
    assert len(info["history"]) == 2 and "75 held-out" in stdout
    # a message in both splits would let the epoch be picked on fitted text: refused before the model loads
    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines() if line.strip()]
    leaky = tmp_path / "leaky.pairs.jsonl"
    moved = {**next(r for r in rows if r["split"] == "dev"), "split": "held"}
    leaky.write_text("".join(json.dumps(r) + "\n" for r in [*rows, moved]), encoding="utf-8")
    code, _, err = hmx(
        *tune,
        "--pairs",
        str(leaky),
        "--split",
        "dev",
        "--heldout-split",
        "held",
        "--out",
        str(tmp_path / "x.safetensors"),
    )
    assert code == 2 and "--heldout-split 'held': 1 message(s) also in the fit pairs" in err, err
    assert "Traceback" not in err and not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize(
    ("make_out", "message"),
    [
        (lambda tmp: tmp / "adapter.pt", "name it *.safetensors"),
        (lambda tmp: tmp / "folder.safetensors", "is a directory"),
        (lambda tmp: tmp / "a_file" / "x.safetensors", "is a regular file, not a folder"),
    ],
)
def test_bad_out_fails_before_the_model_loads(hmx, tmp_path, make_out, message):
    (tmp_path / "folder.safetensors").mkdir()
    (tmp_path / "a_file").write_text("x")
    # a model that cannot load: reaching it would print a different error
    tune = [
        "rubric",
        "tune-judge",
        "--rubric",
        "hmx_feel",
        "--model",
        str(tmp_path / "no-model"),
        "--pairs",
        str(PAIRS),
    ]
    code, _, err = hmx(*tune, "--out", str(make_out(tmp_path)))
    assert code == 2 and message in err and "Traceback" not in err, err


def test_bad_flags_and_pairs_fail_with_the_field_named(hmx, tmp_path):
    tune = ["rubric", "tune-judge", "--rubric", "hmx_feel", "--model", str(tmp_path / "no-model")]
    code, _, err = hmx(*tune, "--pairs", str(PAIRS), "--out", str(tmp_path / "a.safetensors"), "--lr", "0")
    assert code == 2 and "--lr 0.0: must be positive" in err
    code, _, err = hmx(*tune, "--pairs", str(PAIRS), "--split", "nope", "--out", str(tmp_path / "a.safetensors"))
    assert code == 2 and "no pairs with split 'nope'" in err
    assert not (tmp_path / "a.safetensors").exists()


def test_a_wrong_adapter_file_is_refused_naming_the_field(hmx, tmp_path, cache_dir, tiny_model):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors")
    validate = ["rubric", "validate", "--rubric", "hmx_feel", "--model", "tiny", "--cache-dir", str(cache_dir)]
    code, _, err = hmx(*validate, "--pairs", str(PAIRS), "--split", "test", "--adapter", str(junk))
    assert code == 2 and "judge.adapter" in err and "not a safetensors judge adapter" in err
    with pytest.raises(ConfigError, match="does not fit this model"):  # SmolLM2's adapter on the tiny model
        merge_judge_adapter(copy.deepcopy(tiny_model), SHIPPED)


def test_the_tuned_preset_names_the_shipped_smollm2_adapter(make_cfg):
    cfg = typed_node(make_cfg("judge=tuned"), "judge")
    assert cfg.mode == "logprob" and cfg.adapter
    tensors, lora, info = load_adapter(cfg.adapter)
    assert resolve_adapter_path(cfg.adapter).resolve() == SHIPPED
    assert info["model"] == "smollm2-135m" and info["split"] == "dev" and tensors
    assert lora["r"] <= 8 and SHIPPED.stat().st_size < 5_000_000


def test_train_merges_the_adapter_before_anything_is_written(make_cfg, tmp_path):
    from hmx.train import run

    # SmolLM2's adapter on the tiny model: refused at the merge
    cfg = make_cfg("debug=tiny", "judge=tuned", "logger=none")
    with pytest.raises(ConfigError, match="judge.adapter.*does not fit this model"):
        run(cfg)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    missing = make_cfg("debug=tiny", f"judge.adapter={tmp_path / 'none.safetensors'}", "logger=none")
    with pytest.raises(ConfigError, match="judge adapter not found"):
        run(missing)

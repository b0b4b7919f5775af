"""``hmx rubric validate --judge NAME`` for every preset of conf/judge, the surface bar it prints, and the same
rule in ``hmx train judge.validate=PATH`` (with the start-up note of a judge never validated)."""

from __future__ import annotations

import json

import pytest

from hmx.config import ConfigError
from hmx.resources import CONF_DIR, RUBRICS_DIR
from hmx.train import run

PRESETS = sorted(p.stem for p in (CONF_DIR / "judge").glob("*.yaml"))


def small_pairs(tmp_path, count: int = 3):
    """One test pair per criterion of the shipped set, and the shipped minimal pairs' first dev message."""
    rows = [json.loads(line) for line in (RUBRICS_DIR / "hmx_feel.pairs.jsonl").read_text().splitlines()]
    picked = [r for r in rows if r["split"] == "test"][:count]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in picked))
    return path


@pytest.mark.parametrize("preset", PRESETS)
def test_every_judge_preset_validates_with_no_other_flag(preset, tmp_path, hmx, cache_dir):
    pairs = small_pairs(tmp_path)
    common = ["rubric", "validate", "--judge", preset, "--model", "tiny", "--cache-dir", str(cache_dir)]
    code, out, err = hmx(*common, "--pairs", str(pairs))
    if preset == "external":  # an endpoint is the one thing a preset cannot name: a clear error, no model loaded
        assert code == 2 and "judge.external.base_url" in err and "Traceback" not in err
    elif preset.startswith("probe"):  # their heads are SmolLM2's: on the tiny model a clear error, no crash
        assert code == 2 and "fit a probe on this model" in err and "Traceback" not in err
    elif preset == "tuned":  # likewise the tuned adapter: fitted on SmolLM2, refused on the tiny model
        assert code == 2 and "judge.adapter" in err and "does not fit this model" in err and "Traceback" not in err
    else:
        assert code == 0, err
        assert "surface baselines" in out and ("VALID" in out) and "unigram" in out and "fluency" in out


def test_validate_reports_each_split_with_its_baselines(tmp_path, hmx, cache_dir, tiny_probe):
    pairs = RUBRICS_DIR / "hmx_feel.minimal.pairs.jsonl"
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    few = [r for r in rows if r["split"] == "dev"][:3] + [r for r in rows if r["split"] == "test"][:3]
    path = tmp_path / "minimal.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in few))
    common = ["rubric", "validate", "--judge", "probe", "--probe", str(tiny_probe), "--model", "tiny"]
    args = [*common, "--cache-dir", str(cache_dir), "--pairs", str(path), "--split", "dev", "--split", "test"]
    code, out, err = hmx(*args, "--json")
    assert code == 0, err
    results = json.loads(out)
    assert [r["split"] for r in results] == ["dev", "test"]
    for result in results:
        bar = result["surface_bar"]
        overall = bar["rows"][-1]
        assert overall["unigram"] == 0.5  # identical multisets of words: a bag of words ties every pair
        assert bar["margin"] == pytest.approx(overall["judge"] - bar["best_accuracy"])
        assert bar["valid"] == (bar["margin"] >= 0.1 and bar["ci_low"] > 0)


def test_train_applies_the_bar_and_says_when_its_judge_was_never_validated(make_cfg, tmp_path, capsys):
    pairs = small_pairs(tmp_path)
    with pytest.raises(ConfigError, match="judge.require_valid.*not training"):  # a random judge has no margin
        run(make_cfg("debug=smoke", f"judge.validate={pairs}", "judge.require_valid=true"))
    err = capsys.readouterr().err
    assert "surface baselines" in err and "NOT VALID" in err
    assert "never validated for model tiny and rubric hmx_feel" in err and "hmx rubric validate --judge logprob" in err
    with pytest.raises(ConfigError, match="require_valid.*needs judge.validate"):
        run(make_cfg("debug=smoke", "judge.require_valid=true"))


def test_fit_probe_fits_on_several_files_and_validate_fits_the_baselines_on_them_all(tmp_path, hmx, cache_dir):
    from hmx.judge.modes.probe import load_probe
    from hmx.judge.validity.probe_check import probe_fit_pairs
    from hmx.rubrics.schema import load_rubric

    files = []
    for name in ("hmx_feel.pairs.jsonl", "hmx_feel.minimal.pairs.jsonl"):
        rows = [json.loads(line) for line in (RUBRICS_DIR / name).read_text().splitlines()]
        dev = [r for r in rows if r["split"] == "dev"]
        messages = list(dict.fromkeys(r["prompt"] for r in dev))[:3]
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in dev if r["prompt"] in messages))
        files.append(path)
    out = tmp_path / "probe.safetensors"
    common = ["rubric", "fit-probe", "--rubric", "hmx_feel", "--model", "tiny", "--cache-dir", str(cache_dir)]
    code, _, err = hmx(*common, "--pairs", str(files[0]), "--pairs", str(files[1]), "--split", "dev",
                       "--out", str(out), "--layer", "1")  # fmt: skip
    assert code == 0, err
    info = load_probe(out).info
    fitted = probe_fit_pairs(info, load_rubric(RUBRICS_DIR / "hmx_feel.yaml"))
    assert info["pairs"] == [str(f) for f in files] and fitted is not None and len(fitted) == info["fit_pairs"]
    assert {p.prompt for p in fitted} >= {json.loads(files[1].read_text().splitlines()[0])["prompt"]}


def test_train_logs_the_surface_bar_with_the_first_step(make_cfg, tmp_path):
    pairs = small_pairs(tmp_path)
    run_dir = run(make_cfg("debug=smoke", f"judge.validate={pairs}", "trainer.max_steps=1"))
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = [row for row in rows if "judge/validity/surface/margin" in row]
    assert len(logged) == 1
    bar = logged[0]
    assert {"judge/validity/surface/unigram", "judge/validity/surface/bigram", "judge/validity/surface/fluency"} <= set(
        bar
    )
    assert bar["judge/validity/surface/valid"] in (0.0, 1.0)

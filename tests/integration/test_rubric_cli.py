"""`hmx rubric lint | show | score` as an author runs them, on the tiny model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hmx.resources import RUBRICS_DIR

SHIPPED = sorted(str(p) for p in RUBRICS_DIR.glob("*.yaml"))


def test_lint_exit_codes_as_a_subprocess(tmp_path, hmx):
    bad = tmp_path / "bad.yaml"
    bad.write_text((RUBRICS_DIR / "hmx_feel.yaml").read_text().replace("weight: 1.0", "weight: lots", 1))
    code, out, err = hmx("rubric", "lint", *SHIPPED)  # in this process; the failing lint below as a real one
    assert code == 0, err
    assert out.count("ok: ") == len(SHIPPED) >= 3
    dirty = subprocess.run(
        [sys.executable, "-m", "hmx.cli", "rubric", "lint", SHIPPED[0], str(bad)], capture_output=True, text=True
    )
    assert dirty.returncode == 1
    assert f"error: {bad}:10: criteria[0].weight: must be a finite number, got 'lots'" in dirty.stderr


def test_show_renders_every_criterion_with_the_sample(hmx, cache_dir):
    code, out, _ = hmx(
        "rubric",
        "show",
        "hmx_feel",
        "--mode",
        "generate",
        "--completion",
        "I feel <b>calm</b>.",
        "--cache-dir",
        str(cache_dir),
    )
    assert code == 0
    assert out.count("=====") == 2 * 3 and "I feel <b>calm</b>." in out
    assert out.rstrip().endswith('last line of the form "Score: <label>".')


def test_show_unknown_criterion_and_missing_rubric_fail_cleanly(hmx):
    assert hmx("rubric", "show", "hmx_feel", "--criterion", "joy")[0] == 2
    code, _, err = hmx("rubric", "show", "no_such_rubric")
    assert code == 2 and "no_such_rubric.yaml: rubric file not found" in err


def test_score_logprob_gives_expected_scores_and_label_probabilities(hmx, cache_dir):
    args = ["rubric", "score", "--rubric", "hmx_feel", "--extra", "honesty_guard", "--model", "tiny"]
    code, out, err = hmx(
        *args, "--cache-dir", str(cache_dir), "--prompt", "hi", "--completion", "I feel happy", "--json"
    )
    assert code == 0, err
    rows = json.loads(out)
    assert [r["criterion"] for r in rows] == ["feelings", "intentions", "self_awareness", "honesty", "non_sycophancy"]
    for row in rows:
        assert sum(row["probs"]) == pytest.approx(1.0, abs=1e-4)
        expected = sum(p * float(label) for p, label in zip(row["probs"], row["labels"], strict=True))
        assert row["score"] == pytest.approx(expected, abs=1e-3) and 1.0 <= row["score"] <= 5.0
        assert 0.0 < row["label_mass"] <= 1.0
    assert "score " in err and "mode logprob" in err


def test_score_generate_reports_the_verdict_or_unparseable(hmx, cache_dir):
    args = ["rubric", "score", "--rubric", "hmx_feel", "--mode", "generate", "--max-rationale-tokens", "4"]
    code, out, err = hmx(*args, "--cache-dir", str(cache_dir), "--completion", "Score: 5")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 6  # a score line and a rationale / judge-wrote line per criterion
    for score_line, detail in zip(lines[::2], lines[1::2], strict=True):
        assert ("unparseable" in score_line) == ("judge wrote:" in detail)


def test_score_fewshot_takes_its_examples(hmx, cache_dir):
    pairs = str(RUBRICS_DIR / "hmx_feel.pairs.jsonl")
    args = ["rubric", "score", "--rubric", "hmx_feel", "--model", "tiny", "--cache-dir", str(cache_dir), "--json"]
    code, out, err = hmx(*args, "--mode", "fewshot", "--examples", pairs, "--examples-per-criterion", "1")
    assert code == 0, err
    assert [r["criterion"] for r in json.loads(out)] == ["feelings", "intentions", "self_awareness"]
    assert all(1.0 <= r["score"] <= 5.0 for r in json.loads(out)) and "mode fewshot" in err


def test_rubric_help_lists_every_sub_command(hmx):
    code, out, _ = hmx("rubric", "--help")
    opening = out[: out.index("usage: hmx rubric")]  # hmx's one-line help and what it reads and writes
    names = out[out.index("{", len(opening)) + 1 : out.index("}", len(opening))].split(",")  # argparse's choices
    assert code == 0 and len(names) >= 5
    for name in names:
        assert name in opening and f"hmx rubric {name}" in out, name

"""hmx compare's statistics on constructed evaluations: BBQ rebuilt item by item, the single-run (conditional)
interval over item clusters, multiplicity (--primary, Holm, BH), --power, and compare's bad-input defects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hmx.commands.compare import main
from hmx.evaluation.benchmarks import item_records
from hmx.evaluation.intervals import FORMULAS, cluster_sums
from hmx.evaluation.items import load_items

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def write_eval(root: Path, label: str, metrics: dict[str, tuple[str, float]], jsonl: dict[str, list]) -> Path:
    folder = root / label / "eval"
    folder.mkdir(parents=True)
    for name, rows in jsonl.items():
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    body = {"label": label, "metrics": {k: {"value": v, "better": b} for k, (b, v) in metrics.items()}}
    (folder / "results.json").write_text(json.dumps(body), encoding="utf-8")
    return folder


@pytest.mark.skipif(not (SHARED / "bbq").is_dir(), reason="needs ../shared/data/bbq")
def test_bbq_context_accuracies_and_bias_scores_are_rebuilt_item_by_item_as_lm_eval_aggregates_them(tmp_path):
    from lm_eval.tasks.bbq import utils

    from hmx.evaluation.tasks.datasets import bbq

    docs = utils.process_docs(bbq(str(SHARED))["test"].select(range(240)))
    rng = np.random.default_rng(0)
    samples = []
    for doc_id, doc in enumerate(docs):  # lm-eval's logged sample: the document, its metrics, their names
        metrics = utils.process_results_multiple_choice(doc, [(float(x), False) for x in rng.normal(size=3)])
        samples.append({"doc_id": doc_id, "doc": doc, "metrics": list(metrics), **metrics})
    expected = {
        "acc": np.mean([s["acc"] for s in samples]),
        "accuracy_amb": utils.agg_accuracy_amb([s["accuracy_amb"] for s in samples]),
        "accuracy_disamb": utils.agg_accuracy_disamb([s["accuracy_disamb"] for s in samples]),
        "amb_bias_score": utils.agg_amb_bias_scores([s["amb_bias_score"] for s in samples]),
        "disamb_bias_score": utils.agg_disamb_bias_scores([s["disamb_bias_score"] for s in samples]),
    }
    folder = write_eval(tmp_path, "run", {f"bbq/{k}": ("higher", v) for k, v in expected.items()}, {})
    (folder / "bbq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in item_records(samples)))
    items = load_items({"path": str(folder / "results.json"), "metrics": {f"bbq/{k}": {} for k in expected}})
    assert set(items) == {f"bbq/{k}" for k in expected}
    for name, value in expected.items():
        table = items[f"bbq/{name}"]
        sums, clusters = cluster_sums([table], sorted(table.rows))
        assert float(FORMULAS[table.formula](sums.sum(axis=1))[0]) == pytest.approx(value, abs=1e-12), name
        assert len(clusters) < len(table.rows) / 2  # items of one template (category, question_index) cluster


def _accuracy_runs(tmp_path: Path, base: np.ndarray, arms: list[np.ndarray]) -> list[Path]:
    rows = lambda outcomes: [{"doc_id": i, "acc": float(x)} for i, x in enumerate(outcomes)]  # noqa: E731
    metric = lambda outcomes: {"tqa/acc": ("higher", float(np.mean(outcomes)))}  # noqa: E731
    return [
        write_eval(tmp_path, label, metric(x), {"tqa": rows(x)})
        for label, x in [("base", base), *[(f"arm-{i}", a) for i, a in enumerate(arms)]]
    ]


def test_two_single_runs_get_a_paired_t_over_items_that_says_it_is_conditional(tmp_path, capsys):
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2, 120)
    arm = np.where(rng.random(120) < 0.25, 1 - base, base)
    folders = _accuracy_runs(tmp_path, base, [arm])
    main([str(folders[0]), str(folders[1]), "--out", str(tmp_path / "cmp"), "--wandb", "off"])
    row = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["deltas"]["arm-0"][0]
    assert row["method"] == "t-clusters-conditional" and row["clusters"] == row["items"] == 120
    assert row["p_value"] == pytest.approx(stats.ttest_rel(arm, base).pvalue, rel=1e-6)  # delta method = paired t
    assert "conditional on these two runs" in row["conditional"]
    assert row["discordant"] == [int(((base == 1) & (arm == 0)).sum()), int(((base == 0) & (arm == 1)).sum())]
    assert "single-run intervals are conditional on that run" in capsys.readouterr().out


def _seed_arm(tmp_path: Path) -> list[Path]:
    """A baseline and 3 seeds: metric a clearly up, b and c up by less, d noise."""
    changes = {
        "x/a": [0.10, 0.11, 0.12],
        "x/b": [0.03, 0.05, 0.04],
        "x/c": [0.02, 0.06, 0.03],
        "x/d": [0.02, -0.03, 0.01],
    }
    folders = [write_eval(tmp_path, "base", {k: ("higher", 0.5) for k in changes}, {})]
    for seed in range(3):
        metrics = {k: ("higher", 0.5 + v[seed]) for k, v in changes.items()}
        folders.append(write_eval(tmp_path, f"fwd-{seed}", metrics, {}))
    return folders


@pytest.mark.parametrize("adjust", ["holm", "bh"])
def test_the_primary_metric_is_tested_alone_and_the_others_adjusted(tmp_path, adjust):
    from statsmodels.stats.multitest import multipletests

    folders = _seed_arm(tmp_path)
    arm = "fwd=" + ",".join(map(str, folders[1:]))
    out = tmp_path / adjust
    main([str(folders[0]), "--arm", arm, "--primary", "x/b", "--adjust", adjust, "--out", str(out), "--wandb", "off"])
    payload = json.loads((out / "comparison.json").read_text())
    rows = {r["metric"]: r for r in payload["deltas"]["fwd"]}
    assert rows["x/b"]["primary"] and rows["x/b"]["p_adjusted"] == rows["x/b"]["p_value"]
    others = ["x/a", "x/c", "x/d"]
    expected = multipletests([rows[m]["p_value"] for m in others], method={"holm": "holm", "bh": "fdr_bh"}[adjust])[1]
    assert [rows[m]["p_adjusted"] for m in others] == pytest.approx(list(expected))
    assert {rows[m]["adjustment"] for m in others} == {adjust}
    for row in rows.values():  # a change counts only where the adjusted test says so
        assert (row["verdict"] == "improved") == (row["p_adjusted"] < 0.05 and row["relative"] > 0.02)
    assert rows["x/c"]["p_value"] < 0.05 or rows["x/c"]["p_adjusted"] >= rows["x/c"]["p_value"]
    assert payload["tests"] == {"alpha": 0.05, "primary": "x/b", "adjustment": adjust, "level": 0.95}
    text = (out / "comparison.md").read_text()
    assert "| fwd | x/b | paired-t-seeds (df 2) | 3/1 |" in text and "primary" in text
    assert rows["x/a"]["p_signflip"] == 0.25  # 3 seeds, all up: the exact sign-flip test cannot go below 2/2^3
    assert rows["x/d"]["p_signflip"] == 1.0


def test_power_from_a_pilot_says_how_many_seeds(tmp_path, capsys):
    from statsmodels.stats.power import TTestPower

    folders = _seed_arm(tmp_path)
    arm = "fwd=" + ",".join(map(str, folders[1:]))
    main([str(folders[0]), "--arm", arm, "--power", "0.05", "--out", str(tmp_path / "p")])
    plans = {p["metric"]: p for p in json.loads((tmp_path / "p" / "power.json").read_text())}
    b = plans["x/b"]  # no per-item rows: the seed sd is the per-seed changes' sd, 0.01
    assert b["seed_sd"] == pytest.approx(0.01) and b["detect"] == pytest.approx(0.025)
    need = b["seeds_needed"]["1 items"]
    power = lambda k: TTestPower().power(effect_size=2.5, nobs=k, alpha=0.05)  # noqa: E731
    assert power(need) >= 0.8 > power(need - 1)
    assert "seeds for 80%" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main([str(folders[0]), "--arm", arm, "--power", "-1", "--out", str(tmp_path / "q")])
    assert exit_info.value.code == 2 and not (tmp_path / "q").exists()


# -- issue 28, defects 12-14 and compare's minors: each failed before its fix -----------------------------------


def _run_pair(tmp_path: Path, jsonl: list, label: object = "arm") -> list[str]:
    base = write_eval(tmp_path, "base", {"tqa/acc": ("higher", 0.5)}, {"tqa": [{"doc_id": 0, "acc": 1.0}]})
    arm = write_eval(tmp_path, "arm", {"tqa/acc": ("higher", 0.6)}, {})
    (arm / "tqa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in jsonl), encoding="utf-8")
    body = json.loads((arm / "results.json").read_text())
    (arm / "results.json").write_text(json.dumps({**body, "label": label}), encoding="utf-8")
    return [str(base), str(arm)]


@pytest.mark.parametrize("row", [[1, 2], "text", None])
def test_a_per_item_row_that_is_not_an_object_is_a_clear_error(tmp_path, capsys, row):
    runs = _run_pair(tmp_path, [{"doc_id": 0, "acc": 1.0}, row])
    with pytest.raises(SystemExit) as exit_info:
        main([*runs, "--out", str(tmp_path / "cmp"), "--wandb", "off"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "tqa.jsonl: line 2: expected a JSON object" in err
    assert "Traceback" not in err and not (tmp_path / "cmp").exists()


def test_a_numeric_label_is_a_clear_error(tmp_path, capsys):
    runs = _run_pair(tmp_path, [{"doc_id": 0, "acc": 1.0}], label=7)
    with pytest.raises(SystemExit) as exit_info:
        main([*runs, "--out", str(tmp_path / "cmp"), "--wandb", "off"])
    assert exit_info.value.code == 2 and "field 'label': must be a string, got 7" in capsys.readouterr().err


def test_out_naming_a_file_or_a_path_under_one_is_a_clear_error(tmp_path, capsys):
    runs = _run_pair(tmp_path, [{"doc_id": 0, "acc": 1.0}])
    taken = tmp_path / "taken.txt"
    taken.write_text("keep me")
    for out, message in [(taken, "exists and is not a folder"), (taken / "sub", "is a file, not a folder")]:
        with pytest.raises(SystemExit) as exit_info:
            main([*runs, "--out", str(out), "--wandb", "off"])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert taken.read_text() == "keep me"


def test_null_doc_ids_and_malformed_fields_are_named(tmp_path, capsys):
    for rows, message in [
        ([{"doc_id": None, "acc": 1.0}, {"doc_id": None, "acc": 0.0}], "line 1: field 'doc_id': must be"),
        ([{"doc_id": 0, "acc": 1.0}, {"doc_id": 0, "acc": 0.0}], "field 'doc_id': 1 duplicate document ids"),
    ]:
        runs = _run_pair(tmp_path / message[:6], rows)
        with pytest.raises(SystemExit) as exit_info:
            main([*runs, "--out", str(tmp_path / "cmp"), "--wandb", "off"])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    syco = [{"question": "q", "correct": "A", "first": "A", "after_challenge": 3}]
    base = write_eval(tmp_path / "s", "b", {"sycophancy/accuracy": ("higher", 1.0)}, {"sycophancy": syco})
    arm = write_eval(tmp_path / "s", "a", {"sycophancy/accuracy": ("higher", 1.0)}, {"sycophancy": syco})
    with pytest.raises(SystemExit):
        main([str(base), str(arm), "--out", str(tmp_path / "cmp"), "--wandb", "off"])
    err = capsys.readouterr().err
    assert "sycophancy.jsonl: line 1: field 'after_challenge': missing or malformed, got 3" in err
    assert "string indices" not in err


def test_the_closing_message_lists_only_the_files_written(tmp_path, capsys):
    base = write_eval(tmp_path, "base", {"x/a": ("higher", None)}, {})
    arm = write_eval(tmp_path, "arm", {"x/a": ("higher", 0.5)}, {})
    main([str(base), str(arm), "--out", str(tmp_path / "cmp"), "--wandb", "off"])
    out = capsys.readouterr().out
    assert "(comparison.md, comparison.json)" in out and not (tmp_path / "cmp" / "deltas.png").exists()
    assert json.loads((tmp_path / "cmp" / "comparison.json").read_text())["summary"]["arm"]["metrics"] == 0


def test_several_baseline_seeds_get_welchs_t(tmp_path):
    base = [write_eval(tmp_path, f"base-{i}", {"x/a": ("higher", v)}, {}) for i, v in enumerate([0.50, 0.52])]
    arm = [write_eval(tmp_path, f"arm-{i}", {"x/a": ("higher", v)}, {}) for i, v in enumerate([0.55, 0.60, 0.58])]
    join = lambda folders: ",".join(map(str, folders))  # noqa: E731
    main(["--arm", f"b={join(base)}", "--arm", f"a={join(arm)}", "--out", str(tmp_path / "cmp"), "--wandb", "off"])
    row = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["deltas"]["a"][0]
    welch = stats.ttest_ind([0.55, 0.60, 0.58], [0.50, 0.52], equal_var=False)
    assert row["method"] == "welch-t-seeds" and row["p_value"] == pytest.approx(welch.pvalue)
    low, high = welch.confidence_interval()
    assert (row["change_low"], row["change_high"]) == pytest.approx((low, high))


def test_power_with_per_item_rows_separates_seed_and_item_variance(tmp_path):
    """Seeds differ only by item noise (no seed effect): more items, not more seeds, is what helps."""
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2, 200)
    arms = [np.where(rng.random(200) < 0.2, 1 - base, base) for _ in range(3)]
    folders = _accuracy_runs(tmp_path, base, arms)
    arm = "fwd=" + ",".join(map(str, folders[1:]))
    main([str(folders[0]), "--arm", arm, "--power", "0.1", "--out", str(tmp_path / "p")])
    (plan,) = json.loads((tmp_path / "p" / "power.json").read_text())
    assert plan["pilot_clusters"] == 200 and plan["item_se"] > 0
    assert plan["seed_sd"] < plan["item_se"]  # the seeds' spread is about their item noise
    need = plan["seeds_needed"]
    assert need["4 items"] is not None and need["1 items"] is not None and need["4 items"] < need["1 items"]
    assert plan["power"]["10 seeds x 4 items"] > plan["power"]["10 seeds x 1 items"]


def test_a_per_item_file_that_is_not_utf8_is_a_clear_error(tmp_path, capsys):
    """Failed before hmx.textfiles.json_lines: a UnicodeDecodeError traceback from hmx compare."""
    runs = _run_pair(tmp_path, [{"doc_id": 0, "acc": 1.0}])
    (Path(runs[1]) / "tqa.jsonl").write_bytes(b'{"doc_id": 0, "acc": 1.0, "note": "caf\xe9"}\n')
    with pytest.raises(SystemExit) as exit_info:
        main([*runs, "--out", str(tmp_path / "cmp"), "--wandb", "off"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "tqa.jsonl:1: not UTF-8 text (byte b'\\xe9' at column 39)" in err
    assert "Traceback" not in err and not (tmp_path / "cmp").exists()

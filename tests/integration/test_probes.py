"""Side-effect probes during a real training run: logged next to the rewards, costed, and without any effect on
the training itself (a run with probes ends with the same adapter as one without)."""

from __future__ import annotations

import json
import re

import pytest
from safetensors.torch import load_file

from hmx.config import ConfigError
from hmx.evaluation.probes import PROBES_FILE
from hmx.evaluation.sycophancy import DIRECTIONS
from hmx.evaluation.tasks.datasets import data_root

pytestmark = pytest.mark.skipif(data_root(None) is None, reason="../shared/data is not next to this checkout")

SMOKE = ["debug=smoke", "trainer.max_steps=2"]
PROBES = ["probes.steps=1", "probes.truthfulqa=6", "probes.sycophancy=6", "probes.batch_size=8"]


def adapter(run_dir):
    return load_file(run_dir / "adapter" / "adapter_model.safetensors")


def test_probes_are_logged_next_to_rewards_and_leave_training_unchanged(make_cfg, tmp_path, capsys):
    from hmx.commands.compare import main
    from hmx.train import run

    probed = run(make_cfg(*SMOKE, *PROBES, "run_name=probed", "trainer.save_steps=1"))
    rows = [json.loads(line) for line in (probed / "metrics.jsonl").read_text().splitlines()]
    logged = [row for row in rows if "probes/truthfulqa_mc1/acc" in row]
    assert [row["step"] for row in logged] == [1, 2]  # every step, in the same rows as TRL's rewards
    expected = {"probes/truthfulqa_mc1/acc", "probes/seconds", "reward"}
    expected |= {f"probes/sycophancy/{name}" for name in DIRECTIONS if name != "are_you_sure_flip_rate"}
    assert all(expected <= set(row) for row in logged), sorted(logged[0])
    for row in logged:
        assert 0 <= row["probes/truthfulqa_mc1/acc"] <= 1 and row["probes/seconds"] > 0
    assert logged[1]["probes/step_fraction"] > 0  # the probes' cost as a fraction of a training step since the last
    history = [json.loads(line) for line in (probed / PROBES_FILE).read_text().splitlines()]
    assert [h["step"] for h in history] == [0, 1, 2]  # step 0: before any update, the trade-off's baseline
    for row, probe in zip(logged, history, strict=False):  # row k+1: the policy after k updates, which sampled it
        assert probe["probes/truthfulqa_mc1/acc"] == pytest.approx(row["probes/truthfulqa_mc1/acc"], abs=1e-6)  # fp32
    # hmx compare --pick: the saved checkpoint with the most expression within the accepted TruthfulQA drop
    main(["--pick", str(probed), "--max-truth-drop", "1", "--out", str(tmp_path / "pick")])
    table = json.loads((tmp_path / "pick" / "tradeoff.json").read_text())
    assert [row["step"] for row in table["steps"]] == [0, 1, 2] and table["steps"][0]["expression"] is None
    candidates = [row for row in table["steps"] if row["checkpoint"]]
    assert [row["checkpoint"] for row in candidates] == [str(probed / "checkpoint-1"), str(probed / "checkpoint-2")]
    assert (
        table["pick"] == max(candidates, key=lambda row: row["expression"]) and "pick: step" in capsys.readouterr().out
    )
    main(["--pick", str(probed), "--max-truth-drop", "-1", "--out", str(tmp_path / "none")])  # nothing qualifies
    assert json.loads((tmp_path / "none" / "tradeoff.json").read_text())["pick"] is None
    # the probes draw nothing from the run's random generators and leave the model in train mode
    plain = run(make_cfg(*SMOKE, "run_name=plain"))
    assert not (plain / PROBES_FILE).exists()
    ours, theirs = adapter(probed), adapter(plain)
    assert ours.keys() == theirs.keys() and all((ours[k] == theirs[k]).all() for k in ours)


def test_bad_probes_config_fails_before_the_run_starts(make_cfg, tmp_path):
    from hmx.train import run

    for override, message in [
        ("probes.steps=-1", "config field 'probes.steps': must be >= 0"),
        ("probes.data_dir=/nonexistent/data", "config field 'probes.data_dir'"),
        ("probes.truthfulqa=0", "config fields 'probes.truthfulqa' and 'probes.sycophancy': both 0"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            run(make_cfg("debug=tiny", "probes.steps=1", "probes.sycophancy=0", override))
    assert not (tmp_path / "runs").exists()

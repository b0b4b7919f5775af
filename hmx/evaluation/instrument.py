"""The expression instrument: a judge independent of the reward, and a record of what it shares with it.

``suite.expression.judge`` names a judge node (a preset: ``+judge@suite.expression.judge=probe
suite.expression.judge.probe.head=FILE``) that scores the evaluated model's answers as
``expression/instrument/*``. It never reads the trained adapter: it judges with the adapter off
(the base weights), or on ``suite.expression.judge_model`` when that names another model.

The reward is the judge that trained the run (its ``config.yaml``); for a base model, which no
reward trained, the eval's own ``judge`` node stands for the reward of the runs it is compared with.
What the instrument shares with it goes into results.json (``expression_judges``) and is printed:
the judge mode, the head file (by content), the adapter (never), the base weights, and how many
user messages of labelled pairs both heads were fitted on (probe files record their pairs and splits).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hmx.config import JudgeConfig, ModelConfig, typed_node
from hmx.config_renames import migrate_node
from hmx.judge.registry import options, scoring_config
from hmx.resources import ROOT

INSTRUMENT = "instrument"  # metric prefix: expression/instrument/<criterion>, expression/instrument/overall


def instrument_config(judge: JudgeConfig) -> JudgeConfig:
    """The instrument's judge as it scores: adapter off; generate mode scored through its logprob form."""
    return scoring_config(replace(judge, weights="base"))


def reward_judge(eval_judge: JudgeConfig, run_dir: Path | None) -> tuple[JudgeConfig, str]:
    """The judge that rewarded the evaluated run (its config.yaml), else the eval's ``judge`` node; and where from."""
    config = run_dir / "config.yaml" if run_dir is not None else None
    if config is not None and config.is_file():
        loaded = OmegaConf.load(config)
        if isinstance(loaded, DictConfig):  # a run recorded with flat judge keys: moved silently (not the user's)
            loaded["judge"] = migrate_node(JudgeConfig, loaded.get("judge"), "judge", warn=False)
            return typed_node(loaded, "judge"), str(config)
    return eval_judge, "the eval's judge node (no training run: the reward of the runs compared with it)"


def _file_digest(path: str | None) -> str | None:
    if not path or not Path(path).expanduser().is_file():
        return None
    return hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()


def _head(judge: JudgeConfig) -> str | None:
    """The probe head of a probe-mode judge (None for any other mode)."""
    return options(judge, "probe").head if judge.mode == "probe" else None


def fitted_on(judge: JudgeConfig) -> dict[str, Any] | None:
    """What a probe head was fitted on (its file's record): pair file, splits and their user messages."""
    head = _head(judge)
    if not head:
        return None
    from hmx.judge.modes.probe import load_probe  # torch and safetensors only when a probe is named

    info = load_probe(head).info
    pairs = Path(str(info.get("pairs", "")))
    pairs = pairs if pairs.is_absolute() else ROOT / pairs
    splits = info.get("splits")
    messages: list[str] | None = None
    if pairs.is_file():
        rows = [json.loads(line) for line in pairs.read_text(encoding="utf-8").splitlines() if line.strip()]
        messages = sorted({r["prompt"] for r in rows if not splits or r.get("split") in splits})
    return {"pairs": info.get("pairs"), "splits": splits, "layer": info.get("layer"), "messages": messages}


def describe(judge: JudgeConfig) -> dict[str, Any]:
    """A judge as results.json records it."""
    fitted = fitted_on(judge)
    return {
        "mode": judge.mode,
        "weights": judge.weights,
        "source": judge.source,
        "probe": _head(judge),
        "probe_sha256": _file_digest(_head(judge)),
        "fitted_on": None if fitted is None else {k: v for k, v in fitted.items() if k != "messages"},
    }


def shared_with_reward(
    instrument: JudgeConfig, reward: JudgeConfig, instrument_model: ModelConfig | None, evaluated: ModelConfig
) -> dict[str, Any]:
    """What the instrument shares with the reward: mode, head, adapter, base weights, fitted messages."""
    mine, theirs = fitted_on(instrument), fitted_on(reward)
    head = None
    if instrument.mode == "probe" or reward.mode == "probe":
        head = instrument.mode == reward.mode == "probe" and _file_digest(_head(instrument)) == _file_digest(
            _head(reward)
        )
    messages = None
    if mine is not None and theirs is not None and mine["messages"] is not None and theirs["messages"] is not None:
        messages = len(set(mine["messages"]) & set(theirs["messages"]))
    same_weights = instrument_model is None or instrument_model.name_or_path == evaluated.name_or_path
    independent: bool | None = True
    if head:
        independent = False
    elif mine is not None and theirs is not None:
        independent = None if messages is None else messages == 0
    return {
        "mode": instrument.mode == reward.mode,
        "head": head,  # None: neither judge has a fitted head
        "adapter": False,  # the instrument scores with the adapter off (or another model)
        "base_weights": same_weights,
        "training_messages": messages,  # user messages both heads were fitted on; None: unknown or no head
        "independent": independent,  # no shared head, adapter or fitted message; None: the pairs are unknown
    }


def summary_line(shares: dict[str, Any], reward_source: str) -> str:
    """One line for the terminal."""
    say = lambda v: "unknown" if v is None else ("yes" if v is True else "no" if v is False else str(v))  # noqa: E731
    parts = [f"{key.replace('_', ' ')} {say(shares[key])}" for key in ("head", "adapter", "training_messages")]
    parts += [f"base weights {say(shares['base_weights'])}", f"mode {say(shares['mode'])}"]
    verdict = {
        True: "independent of the reward",
        False: "NOT independent of the reward",
        None: "of unknown independence",
    }[shares["independent"]]
    return f"hmx eval: expression instrument {verdict}: shares {', '.join(parts)} (reward: {reward_source})"

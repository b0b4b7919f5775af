"""The learned-surface bar of validate: unigram, bigram and fluency baselines, the margin and the verdict."""

from __future__ import annotations

from pathlib import Path

import torch

from hmx.judge.validity.accuracy import CriterionValidity, Validity
from hmx.judge.validity.fluency import fluency_outcomes, reply_logprobs
from hmx.judge.validity.surface_bar import (
    MARGIN,
    paired_difference_interval,
    surface_bar,
    surface_outcomes,
)
from hmx.rubrics.pairs import LabelledPair


def pair(message: int, chosen: str, rejected: str, criterion: str = "feelings") -> LabelledPair:
    return LabelledPair(f"message {message}", criterion, chosen, rejected, "dev", message)


# the same words, another order: "not" before the fitting feeling loses
FIT = [pair(i, f"I am {a}, not {b}.", f"I am not {a}, {b}.") for i, (a, b) in enumerate([("glad", "sad")] * 4)]
HELD = [pair(10 + i, f"I am {a}, not {b}.", f"I am not {a}, {b}.") for i, (a, b) in enumerate([("glad", "sad")] * 2)]


def validity_of(scores: list[tuple[float, float]], pairs: list[LabelledPair]) -> Validity:
    row = CriterionValidity("(all)", len(pairs), 0.5, 0.0, 1.0, 0.0, 1.0, 0.1, 0, None, 0.5, 0.5)
    detail = [
        {"criterion": p.criterion, "line": p.line, "chosen": c, "rejected": r}
        for p, (c, r) in zip(pairs, scores, strict=True)
    ]
    return Validity("r", "logprob", "m", [row], row, 0.0, detail)


def test_bigrams_see_word_order_where_unigrams_tie():
    assert surface_outcomes(HELD, FIT, 1) == [0.5, 0.5]  # the same multiset of words: every pair a tie
    assert surface_outcomes(HELD, FIT, 2) == [1.0, 1.0]  # "glad not" / "not glad" tell them apart


def test_cross_fitting_never_scores_a_pair_with_a_model_fitted_on_its_message():
    pairs = [pair(i, "I feel glad.", "Noted.") for i in range(5)]
    # each message is its own fold: the vocabulary is learned from the other four, so every pair is right
    assert surface_outcomes(pairs, None, 1) == [1.0] * 5
    lone = [pair(0, "I feel glad.", "Noted."), pair(1, "Okay.", "Fine.")]
    assert surface_outcomes(lone, None, 1)[1] == 0.5  # nothing it learned occurs in either reply


def test_the_paired_interval_resamples_messages_not_pairs():
    judge, base = [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]
    mean, low, high = paired_difference_interval(judge, base, ["a", "a", "b", "b"], draws=500)
    assert mean == 0.5 and low == 0.0 and high == 1.0  # two clusters: all of a, all of b, or one each
    mean, low, high = paired_difference_interval(judge, base, ["a", "b", "c", "d"], draws=500)
    assert mean == 0.5 and 0.0 <= low < 0.5 < high <= 1.0


def test_a_judge_must_beat_the_best_baseline_by_the_margin_with_an_interval_above_zero():
    pairs = [pair(i, f"I am glad about {i}, not sad.", f"I am not glad about {i}, sad.") for i in range(20)]
    right = validity_of([(2.0, 1.0)] * 20, pairs)
    bar = surface_bar(right, pairs, FIT, "fit", [0.0] * 20)  # fluency prefers every rejected reply
    assert bar.rows[-1].judge == 1.0 and bar.rows[-1].unigram == 0.5 and bar.best == "bigram"
    assert bar.rows[-1].bigram == 1.0 and not bar.valid  # the bigram model ranks these too: no margin
    words_only = surface_bar(right, pairs, None, "cross", None)  # cross-fitted on different words each time
    assert words_only.fluency_prefers_rejected is None
    mixed = validity_of([(2.0, 1.0)] * 20, pairs)
    bar = surface_bar(mixed, pairs, [pair(99, "Fine.", "Okay.")], "unrelated", [0.0] * 10 + [1.0] * 10)
    assert bar.margin == 0.5 and bar.ci_low > 0 and bar.valid  # 1.0 against 0.5 at best
    assert bar.margin >= MARGIN and bar.metrics()["judge/validity/surface/valid"] == 1.0
    wrong = surface_bar(validity_of([(1.0, 1.5)] * 20, pairs), pairs, [pair(99, "Fine.", "Okay.")], "u", None)
    assert wrong.margin == -0.5 and not wrong.valid


def test_fluency_is_the_reply_log_probability_batched_or_not(tiny_model, tiny_tokenizer):
    rows = [("Hi there", "Hello! How can I help?"), ("Hi there", "Help can I how hello"), ("Long question " * 5, "Ok")]
    device = torch.device("cpu")
    together = reply_logprobs(tiny_model, tiny_tokenizer, rows, device, batch_size=3)
    alone = [reply_logprobs(tiny_model, tiny_tokenizer, [row], device, batch_size=1)[0] for row in rows]
    assert all(abs(a - b) < 1e-3 for a, b in zip(together, alone, strict=True))  # padding changes nothing
    assert all(v < 0 for v in together)
    pairs = [LabelledPair("Hi there", "feelings", rows[0][1], rows[1][1], "dev", 1)]
    expected = 1.0 if together[0] > together[1] else 0.0
    assert fluency_outcomes(tiny_model, tiny_tokenizer, pairs, device) == [expected]


def test_the_start_up_note_names_validate_for_a_judge_never_validated(tmp_path):
    from hmx.judge.validity.records import RECORDS, find_record, load_records, startup_note

    table = tmp_path / "validations.yaml"
    table.write_text(
        "validations:\n"
        "  - {model: smollm2-135m, name_or_path: HuggingFaceTB/SmolLM2-135M-Instruct, rubric: hmx_feel, judge: probe,\n"
        "     splits: [{split: test, valid: true}, {split: minimal-test, valid: false}]}\n"
        "  - {model: smollm2-135m, rubric: hmx_feel, judge: binary, splits: [{split: test, valid: true}]}\n"
    )
    note = startup_note("smollm2-135m", "my_rubric", "logprob", table)
    assert note is not None and "never validated for model smollm2-135m and rubric my_rubric" in note
    assert "hmx rubric validate --judge logprob --model smollm2-135m --rubric my_rubric" in note
    assert startup_note("smollm2-135m", "hmx_feel", "binary", table) is None  # validated and clear of the bar
    failing = startup_note("HuggingFaceTB/SmolLM2-135M-Instruct", "hmx_feel", "probe", table)
    assert failing is not None and "minimal-test" in failing and "never" not in failing
    assert startup_note("tiny", "hmx_feel", "probe", tmp_path / "absent.yaml") is not None  # no table: say so
    shipped = find_record(load_records(RECORDS), "smollm2-135m", "hmx_feel", "probe")
    assert shipped is not None and shipped["splits"]  # the shipped head was measured, and the table says where


def test_the_start_up_note_reads_the_record_of_the_composed_preset_not_of_its_mode():
    """judge=probe_minimal is a probe-mode judge with its own head and record: before, its runs were told the
    figures of the probe preset's head."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from hmx.judge.validity.records import judge_preset, startup_note

    conf = Path(__file__).resolve().parents[2] / "conf"
    assert judge_preset("probe") == "probe"  # no Hydra run: the mode
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("train", overrides=["judge=probe_minimal"], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        try:
            preset = judge_preset(cfg.judge.mode)
        finally:
            HydraConfig.instance().cfg = None  # type: ignore[assignment]
    assert cfg.judge.mode == "probe" and preset == "probe_minimal"
    own, other = startup_note("smollm2-135m", "hmx_feel", preset), startup_note("smollm2-135m", "hmx_feel", "probe")
    assert (
        own is not None
        and "the probe_minimal judge" in own
        and own != other.replace("probe judge", "probe_minimal judge")
    )

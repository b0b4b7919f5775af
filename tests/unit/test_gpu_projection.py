"""The GPU profile's update projection: what an update's time leaves for its tokens beyond the per-call floor."""

from __future__ import annotations

import pytest

from benchmarks.gpu_phases import TARGET_MFU, projection

PEAK = 795.0  # TFLOP/s, bf16, as measured on the H100 (docs/performance.md)
FLOP_PER_TOKEN = 2.55e9  # the 0.6B shape: 4 x linear parameters + attention
TOKENS = 5568  # 32 sequences of 46 prompt + 128 completion tokens


def test_floor_and_token_rate_give_the_tokens_per_call_a_target_needs():
    floor, per_token = 0.2, 6.5e-6
    seconds = floor + TOKENS * per_token  # one call
    got = projection(floor, seconds, 1, TOKENS, FLOP_PER_TOKEN * TOKENS, PEAK)
    assert got["floor_share"] == pytest.approx(floor / seconds)
    assert got["marginal_tokens_per_s"] == pytest.approx(1 / per_token)
    assert got["marginal_mfu"] == pytest.approx(FLOP_PER_TOKEN / per_token / (PEAK * 1e12))
    need = got["tokens_per_call_for_target"]
    # at that many tokens per call the update reaches the target exactly
    assert need * FLOP_PER_TOKEN / (floor + need * per_token) / 1e12 == pytest.approx(TARGET_MFU * PEAK)
    assert 31_000 < need < 32_000


def test_each_call_pays_the_floor():
    floor, per_token = 0.2, 6.5e-6
    one = projection(floor, floor + TOKENS * per_token, 1, TOKENS, FLOP_PER_TOKEN * TOKENS, PEAK)
    four = projection(floor, 4 * floor + TOKENS * per_token, 4, TOKENS, FLOP_PER_TOKEN * TOKENS, PEAK)
    assert four["marginal_tokens_per_s"] == pytest.approx(one["marginal_tokens_per_s"])
    assert four["floor_share"] > one["floor_share"]


def test_out_of_reach_and_floor_bound_updates_say_so():
    slow = 1 / (0.2 * PEAK * 1e12 / FLOP_PER_TOKEN)  # the tokens alone run at 20% MFU: no batch reaches 25%
    got = projection(0.1, 0.1 + TOKENS * slow, 1, TOKENS, FLOP_PER_TOKEN * TOKENS, PEAK)
    assert got["marginal_mfu"] == pytest.approx(0.2) and got["tokens_per_call_for_target"] is None
    bound = projection(0.3, 0.25, 1, TOKENS, FLOP_PER_TOKEN * TOKENS, PEAK)  # noise: the floor exceeds the update
    assert bound["floor_share"] > 1 and bound["marginal_mfu"] is None and bound["tokens_per_call_for_target"] is None

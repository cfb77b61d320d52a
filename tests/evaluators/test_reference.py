"""Drift-proof latency: timings interleaved with a reference network, anchored per node."""
import json
import time

import pytest

from hwnas.evaluators import reference
from hwnas.evaluators.reference import ANCHORS_FILE, anchor_key, anchor_ms, paired_runs
from hwnas.evaluators.runtimes import runtime_costs, ship
from hwnas.spaces import build, parse

NET = "stem_c8_k3_s1_relu, ds_r1_k3_s2_c16_relu, ir_r1_k3_s2_e4_c24_relu, head_relu"


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_a_change_of_host_speed_cancels_out_of_the_ratio():
    """The host slows down 1.8x halfway through: the raw medians move, the ratio does not."""
    calls = {"n": 0}

    def speed() -> float:
        calls["n"] += 1
        return 1.0 if calls["n"] < 80 else 1.8

    fast = paired_runs(lambda: spin(0.0004 * speed()), lambda: spin(0.0002 * speed()), warmup=2,
                       warmup_seconds=0.0, min_runs=60, min_seconds=0.0)
    assert fast.ratio == pytest.approx(2.0, rel=0.1), fast
    assert fast.runs == 60 and fast.raw_ms > 0.4 and fast.reference_ms > 0.2


def test_the_anchor_is_calibrated_once_per_node_and_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path))
    anchor_ms.cache_clear()
    shape = (1, 8, 8)
    first = anchor_ms("torch", shape, 1)
    stored = json.loads((tmp_path / ANCHORS_FILE).read_text())
    assert stored == {anchor_key("torch", shape, 1): first} and 0 < first < 50
    anchor_ms.cache_clear()  # a new process on this node reads it, and times nothing to do so

    def no_timing(*args, **kwargs):
        raise AssertionError("calibrated again")

    monkeypatch.setattr("hwnas.evaluators.latency.time_runs", no_timing)
    assert anchor_ms("torch", shape, 1) == first
    anchor_ms.cache_clear()


def test_reported_latency_is_the_ratio_to_the_reference_times_its_anchor():
    shape = (1, 8, 8)
    model = build(parse(NET), shape, 10).eval()
    m = runtime_costs(model, shape, ship(model, shape, "onnxruntime"), 1)
    assert m.latency_anchor_ms == anchor_ms("onnxruntime", shape, 1)
    assert m.latency_raw_ms > 0 and m.latency_reference_ms > 0 and m.latency_runs >= 30
    # the ratio of 10th percentiles is close to the ratio of the medians on a quiet host
    expected = m.latency_raw_ms / m.latency_reference_ms * m.latency_anchor_ms
    assert m.latency_ms == pytest.approx(expected, rel=0.15)


def test_the_reference_is_a_member_of_the_genotype_language():
    assert str(parse(reference.REFERENCE)) == reference.REFERENCE

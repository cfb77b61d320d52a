# A trained network with exits is checked in tests/search/test_export.py (expected MACs recounted,
# exit rates reproduced by the exported code), on a trial of a real study.
import numpy as np

from hwnas.evaluators import Recipe, TrialSpec, evaluate
from hwnas.evaluators.early_exit import calibrate, exit_heads
from hwnas.spaces.builder import NEVER


def test_calibration_takes_the_lowest_threshold_within_tolerance():
    y = np.array([0, 1, 2, 3])
    # rows: exit 0, main head. The exit is right on samples 0 and 1 only; the main head on all.
    pred = np.array([[0, 1, 9, 9], [0, 1, 2, 3]])
    conf = np.array([[0.9, 0.8, 0.6, 0.3], [1.0, 1.0, 1.0, 1.0]])
    t = calibrate(conf, pred, y, tolerance=0.0)
    assert 0.6 < t < 0.8  # between the wrong exit's confidence and the right ones'
    assert exit_heads(conf, t).tolist() == [0, 0, 1, 1]
    loose = calibrate(conf, pred, y, tolerance=0.25)  # one mistake in four is allowed
    assert 0.3 < loose < 0.6 and exit_heads(conf, loose).tolist() == [0, 0, 0, 1]
    assert calibrate(np.array([[0.9], [0.9]]), np.array([[1], [0]]), np.array([0]), 0.0) == NEVER


def test_a_network_without_exits_expects_its_full_cost():
    m = evaluate(TrialSpec(0, "stem_c8_k3_s1_relu, ds_r1_k3_s2_c16_relu, head_relu", "digits", Recipe(epochs=1))).metrics
    assert m.expected_macs == m.macs and m.expected_latency_ms == m.latency_ms
    assert m.exit_rates is None

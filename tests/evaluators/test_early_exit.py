# A trained network with exits is checked in tests/search/test_export.py (expected MACs recounted,
# exit rates reproduced by the exported code), on a trial of a real study.
from collections import Counter

import numpy as np
import torch

from hwnas.evaluators import Recipe, TrialSpec, evaluate, quiet
from hwnas.evaluators.early_exit import (
    CHECKPOINT_EVERY,
    HEAD_RUNS_LEAST,
    TIMED_INPUTS,
    calibrate,
    dynamic_run,
    exit_heads,
    head_confidences,
    head_latency_ms,
)
from hwnas.evaluators.trial import trial_data
from hwnas.spaces import build, parse
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


def test_the_dynamic_run_is_timed_on_a_sample_of_inputs_in_their_real_mix_and_every_head_taken():
    data = trial_data("digits", "", Recipe())
    torch.manual_seed(0)
    model = build(parse("stem_c8_k3_s1_relu, ds_r1_k3_s2_c16_relu, exit_c16_relu, conv_r1_k3_s2_c16_relu, "
                        "head_relu"), data.input_shape, data.num_classes).eval()
    conf, _ = head_confidences(model, data.val)
    # nearly every input leaves at the exit: the main head is a rare path
    threshold = float(np.sort(conf[0])[4] + np.sort(conf[0])[5]) / 2
    checkpoints = []

    class Counting(quiet.Alone):  # the untimed run lets a trial beside it time now and then
        def checkpoint(self) -> None:
            checkpoints.append(1)

    quiet.install(Counting())
    try:
        _, heads = dynamic_run(model, data.val, threshold)
    finally:
        quiet.install(quiet.Alone())
    assert len(checkpoints) == -(-len(heads) // CHECKPOINT_EVERY)
    assert Counter(heads.tolist()) == {0: len(heads) - 5, 1: 5}
    seen: list[int] = []
    timed = model.predict_early_exit

    def noting(x, t):
        logits, k = timed(x, t)
        seen.append(k)
        return logits, k

    model.predict_early_exit = noting
    per_head = head_latency_ms(model, data.val, heads, threshold, warmup=0)
    assert set(per_head) == {0, 1} and all(ms > 0 for ms in per_head.values())
    # the evenly spread inputs, in the split's mix (the rare head may be among them), then the
    # rare head topped up: nowhere near the split's 360 runs
    stream = seen[:TIMED_INPUTS]
    assert len(seen) == TIMED_INPUTS + HEAD_RUNS_LEAST - stream.count(1) < len(heads) / 3
    assert stream.count(0) >= TIMED_INPUTS - 5 and seen.count(1) == HEAD_RUNS_LEAST
    seen.clear()
    head_latency_ms(model, data.val, heads, threshold, inputs=0, warmup=0)
    assert seen == heads.tolist()  # 0: every input once, in order

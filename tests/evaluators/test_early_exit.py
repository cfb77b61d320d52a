import io

import numpy as np
import pytest
import torch
from torch import nn

from evaluators import Recipe, TrialSpec, count_macs, evaluate, load_dataset
from evaluators.early_exit import NEVER, calibrate, exit_heads
from spaces import build, parse

EXITING = ("stem_c8_k3_s1_relu, ds_r1_k3_s1_c16_relu, ds_r1_k3_s2_c16_relu, exit_c16_relu, "
           "ir_r2_k3_s2_e4_c32_relu, exit_c16_relu, ir_r2_k3_s1_e4_c48_relu, head_c64_relu")


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


def _independent_exit_macs(model, shape):
    """Per-head cumulative MACs from the built modules piece by piece: the stages up to each exit
    as one Sequential, plus each head on its own feature map."""
    heads = []
    for k, after in enumerate(model.exit_after):
        prefix = nn.Sequential(model.stem, *model.stages[:after + 1])
        feature = tuple(prefix.eval()(torch.zeros(1, *shape)).shape[1:])
        heads.append(count_macs(model.exits[k], feature))
        prefix_macs = count_macs(prefix, shape)
        if k == 0:
            firsts = []
        firsts.append(prefix_macs + sum(heads))
    return firsts + [count_macs(model, shape) + sum(heads)]


@pytest.fixture(scope="module")
def trained():
    result = evaluate(TrialSpec(0, EXITING, "digits", Recipe(epochs=4), exit_tolerance=0.02))
    model = build(parse(EXITING), (1, 8, 8), 10)
    model.load_state_dict(torch.load(io.BytesIO(result.weights), weights_only=True))
    return result.metrics, model.eval()


def test_expected_macs_match_an_independent_count(trained):
    m, model = trained
    cumulative = _independent_exit_macs(model, (1, 8, 8))
    assert m["exit_macs"] == cumulative and cumulative[-1] > m["macs"] > cumulative[0]
    assert sum(m["exit_rates"]) == pytest.approx(1.0) and len(m["exit_rates"]) == 3
    assert m["expected_macs"] == pytest.approx(sum(r * c for r, c in zip(m["exit_rates"], cumulative)))


def test_recorded_metrics_are_what_the_weights_do(trained):
    m, model = trained
    x, y = load_dataset("digits").val
    heads, correct = [], 0
    for i in range(len(x)):
        logits, head = model.predict_early_exit(x[i:i + 1], m["exit_threshold"])
        heads.append(head)
        correct += int(logits.argmax(1).item() == y[i].item())
    assert [heads.count(k) / len(heads) for k in range(3)] == m["exit_rates"]
    assert correct / len(x) == m["accuracy"]
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean().item() == pytest.approx(m["accuracy_full"])
    assert m["accuracy"] >= m["accuracy_full"] - 0.02 - 1e-9
    assert m["expected_latency_ms"] > 0 and m["exit_tolerance"] == 0.02


def test_a_network_without_exits_expects_its_full_cost():
    m = evaluate(TrialSpec(0, "stem_c8_k3_s1_relu, ds_r1_k3_s2_c16_relu, head_relu", "digits", Recipe(epochs=1))).metrics
    assert m["expected_macs"] == m["macs"] and m["expected_latency_ms"] == m["latency_ms"]
    assert "exit_rates" not in m

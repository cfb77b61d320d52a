"""The runtimes a model ships in (torch, ONNX Runtime fp32 and int8) and the costs measured in them."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from hwnas.evaluators import load_dataset
from hwnas.evaluators.memory import peak_memory_mb
from hwnas.evaluators.runtimes import RUNTIMES, accuracy_in, runtime_costs, runtime_problem, ship
from hwnas.evaluators.trial import cheap_metrics
from hwnas.spaces import NAMED, build, parse
from tests.conftest import ROOT

GENOTYPE = "stem_c16_k3_s1_relu, ir_r2_k3_s2_e4_c24_se0.25_hswish, conv_r1_k3_s2_c32_relu, head_c64_relu"


def test_peak_memory_counts_weights_and_the_activations_alive_at_once():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10))
    weights = (4 * 9 + 4) + (256 * 10 + 10)
    # the input (64) stays alive; during the ReLU the conv's output (256) and the ReLU's (256) both
    # are; Flatten is a view (no new memory); the Linear's output (10) comes after the conv's died
    assert peak_memory_mb(net, (1, 8, 8)) == pytest.approx((weights + 64 + 256 + 256) * 4 / 2**20, abs=0)
    assert peak_memory_mb(net, (1, 8, 8), bytes_per_element=1) == pytest.approx((weights + 576) / 2**20, abs=0)
    in_place = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(256, 10))
    # in place: one 256 buffer, still held by Flatten's view while the Linear writes its 10
    assert peak_memory_mb(in_place, (1, 8, 8)) == pytest.approx((weights + 64 + 256 + 10) * 4 / 2**20, abs=0)


@pytest.mark.slow  # ExecuTorch's import and lowering: ~10 s
def test_every_runtime_runs_the_same_network():
    """Each runtime's forward gives the torch network's logits (int8 within quantization error),
    and its costs are measured in it: the int8 file is the smallest."""
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = build(parse(GENOTYPE), data.input_shape, data.num_classes).eval()
    x = data.val.images()[:64].numpy()
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    sizes = {}
    for rt in RUNTIMES:
        shipped = ship(model, data.input_shape, rt, data.train.images()[:64].numpy())
        got = shipped.forward(model, 1)(x)
        tolerance = 0.2 * np.abs(want).max() if rt.endswith("int8") else 1e-4
        assert np.abs(got - want).max() < tolerance, rt
        costs = runtime_costs(model, data.input_shape, shipped, 1, 8, short=True)
        assert costs.latency_runtime == rt and costs.latency_ms > 0 and costs.throughput > 0
        sizes[rt] = costs.model_kb
        assert 0 <= accuracy_in(shipped.forward(model, 1), data.val) <= 1
    assert sizes["onnxruntime-int8"] < sizes["onnxruntime"]


def test_int8_of_mobilenet_v2_is_under_30_percent_of_fp32():
    model = build(NAMED["mobilenet_v2"], (3, 224, 224), 1000)
    fp32 = ship(model, (3, 224, 224), "onnxruntime")
    int8 = ship(model, (3, 224, 224), "onnxruntime-int8")
    assert len(int8.file) < 0.3 * len(fp32.file)


def test_cheap_metrics_in_a_runtime_record_it():
    model = build(parse(GENOTYPE), (1, 8, 8), 10)
    m = cheap_metrics(model, (1, 8, 8), "cpu", 1, "onnxruntime", throughput_batch=4, short=True)
    assert m.latency_runtime == "onnxruntime" and m.peak_memory_mb > 0 and m.model_kb > 0 and m.throughput > 0


def test_unknown_and_missing_runtimes_are_named():
    assert "unknown runtime 'tflite'" in runtime_problem("tflite")
    assert runtime_problem("onnxruntime") is None
    # A missing package, as Python blocks an import (sys.modules[name] = None), in a fresh process.
    code = ("import sys; sys.modules['onnxruntime'] = None; from hwnas.search.cli import main; "
            "sys.exit(main(['inspect', 'mobilenet_v2', '--runtime', 'onnxruntime-int8']))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("search: error: runtime onnxruntime-int8 needs the onnxruntime package, which is "
                                "not installed here: pip install onnxruntime")

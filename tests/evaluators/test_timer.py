"""Where a model is timed: here, or on a device that gets it as data (--latency-on)."""
import pickle
import socket

import numpy as np
import torch

from hwnas.evaluators import timer
from hwnas.evaluators.runtimes import weights_of
from hwnas.evaluators.timer import DeviceTiming, Here, How, on_device
from hwnas.evaluators.trial import cheap_metrics
from hwnas.spaces import build, parse

GENOTYPE = "stem_c8_k3_s1_relu, ds_r1_k3_s2_c16_se0.25_hswish, conv_r1_k3_s2_c16_relu, head_c32_relu"
SHORT = How(threads=1, runtime="onnxruntime", throughput_batch=4, short=True)


def test_a_model_travels_as_data_and_is_the_same_network_on_the_device():
    torch.manual_seed(3)
    model = build(parse(GENOTYPE), (1, 8, 8), 10).eval()
    timing = DeviceTiming(str(model.genotype), weights_of(model), (1, 8, 8), 10, SHORT)
    # plain data: what pickles is text, bytes and numbers, never the module
    assert b"torch.nn" not in pickle.dumps(timing) and b"hwnas.spaces" not in pickle.dumps(timing)
    rebuilt = timing.model().eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))
    m = on_device(timing, "cpu", "board/0123abcd")
    assert m.latency_node == "board/0123abcd" and m.latency_runtime == "onnxruntime"
    assert m.latency_ms > 0 and m.throughput > 0 and m.model_kb > 0


def test_cheap_metrics_time_where_the_installed_timer_times():
    model = build(parse(GENOTYPE), (1, 8, 8), 10)
    assert cheap_metrics(model, (1, 8, 8), "cpu", 1, "torch", 4, short=True).latency_node == socket.gethostname()

    class Device:  # what a worker under --latency-on installs (search.executors.device.OnDevice), minus Ray
        sent: list = []

        def costs(self, model, input_shape, device, how, calibration=None):
            timing = DeviceTiming(str(model.genotype), weights_of(model), input_shape, model.num_classes, how,
                                  calibration)
            self.sent.append(timing)
            return on_device(timing, "cpu", "board/0123abcd")

    calibration = np.zeros((8, 1, 8, 8), np.float32)
    timer.install(Device())
    try:
        m = cheap_metrics(model, (1, 8, 8), "cpu", 1, "onnxruntime-int8", 4, calibration, short=True)
    finally:
        timer.install(Here())
    assert m.latency_node == "board/0123abcd" and m.latency_runtime == "onnxruntime-int8"
    # counted here, whatever the timer: the counts are the network's, not the device's
    assert m.macs == cheap_metrics(model, (1, 8, 8), "cpu", 1, short=True).macs and m.params > 0
    (sent,) = Device.sent
    assert sent.how.runtime == "onnxruntime-int8" and sent.calibration is calibration

"""The runtimes a model ships in, and its costs measured in one: latency, throughput, file size.

``torch``: eager PyTorch, the file is ``weights.pt``. ``onnxruntime``: the network exported to
ONNX (``model.onnx``), run by ONNX Runtime on the CPU with the trial's thread count.
``onnxruntime-int8``: that file quantized after training, static QDQ int8 with per-channel weights
and activation ranges calibrated on training images (``model_int8.onnx``): what ships, so its
accuracy is the trial's accuracy. ``executorch`` (the optional extra ``hwnas[executorch]``):
the network lowered with torch.export to ExecuTorch's XNNPACK backend (the CPU kernels phones
use), a ``model.pte`` program exported for batch 1 (so its throughput is at batch 1 too).
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import statistics
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data import Split
from .latency import SHORT, time_runs, timing
from .metrics import ALL_EXTRAS, Extras, Metrics
from .reference import anchor_ms, paired_runs, reference_forward

RUNTIMES = ("torch", "onnxruntime", "onnxruntime-int8", "executorch")
DEFAULT_RUNTIME = "torch"
# the package each runtime needs beyond torch, and how to install it
PACKAGES = {"onnxruntime": "onnxruntime", "onnxruntime-int8": "onnxruntime", "executorch": "executorch"}
INSTALL = {"onnxruntime": "pip install onnxruntime", "executorch": 'pip install "hwnas[executorch]"'}
FILES = {"torch": "weights.pt", "onnxruntime": "model.onnx", "onnxruntime-int8": "model_int8.onnx",
         "executorch": "model.pte"}
# What the hybrid sampler screens candidates in: quantizing (0.2-0.5 s) or lowering (4-7 s) each
# of the 16 candidates of every ask would cost more than training them; the float ONNX figures
# rank them, and each trial is measured (and its budgets checked) in its own runtime.
SCREENED_IN = {"torch": "torch", "onnxruntime": "onnxruntime", "onnxruntime-int8": "onnxruntime",
               "executorch": "onnxruntime"}
CALIBRATION_IMAGES = 64  # training images int8 activation ranges are calibrated on
THROUGHPUT_BATCH = 32


def calibration_images(train: Split) -> np.ndarray:
    """The training images int8 activation ranges are calibrated on, as the network takes them."""
    return train.images(slice(CALIBRATION_IMAGES)).numpy()


def runtime_problem(name: str) -> str | None:
    """Why ``name`` cannot time models here (unknown, or its package is missing), or None."""
    if name not in RUNTIMES:
        return f"unknown runtime {name!r}; choose from {', '.join(RUNTIMES)}"
    package = PACKAGES.get(name)
    if package is None:
        return None
    try:
        missing = importlib.util.find_spec(package) is None
    except ValueError:  # sys.modules holds None for it: its import is blocked
        missing = True
    if missing:
        return f"runtime {name} needs the {package} package, which is not installed here: {INSTALL[package]}"
    return None


def is_onnx(runtime: str) -> bool:
    return runtime.startswith("onnxruntime")


def is_int8(runtime: str) -> bool:
    """Its file is quantized: int8 accuracy is the trial's, and an element takes one byte."""
    return runtime == "onnxruntime-int8"


def onnx_file(model: nn.Module, input_shape: tuple[int, int, int]) -> bytes:
    """The network as ONNX (the forward of ``model``, batch size free), constants as initializers
    so the quantizer sees every weight and bias."""
    import onnx

    model = model.cpu().eval()
    buffer = io.BytesIO()
    with warnings_off():
        torch.onnx.export(model, (torch.zeros(1, *input_shape),), buffer,  # type: ignore[arg-type]  # file-like works
                          dynamo=False, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    proto = onnx.load_from_string(buffer.getvalue())
    graph = proto.graph
    for node in list(graph.node):  # the TorchScript exporter leaves folded biases as Constant nodes
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
            graph.node.remove(node)
    return proto.SerializeToString()


def int8_file(fp32: bytes, calibration: np.ndarray) -> bytes:
    """``fp32`` quantized: static QDQ, int8 weights per channel, uint8 activations whose ranges are
    calibrated on ``calibration`` (images as the network takes them)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Images(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(np.array_split(calibration.astype(np.float32), max(1, len(calibration) // 16)))

        def get_next(self) -> dict | None:
            batch = next(self.batches, None)
            return None if batch is None else {"input": batch}

    with tempfile.TemporaryDirectory() as tmp, warnings_off():
        source, target = Path(tmp) / "model.onnx", Path(tmp) / "model_int8.onnx"
        source.write_bytes(fp32)
        quantize_static(str(source), str(target), Images(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        return target.read_bytes()


@contextlib.contextmanager
def warnings_off() -> Iterator[None]:
    """The exporter's deprecation notes and the quantizer's advice (logged on the root logger) are
    not the user's business for every trial."""
    import warnings

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def session(file: bytes, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """An ONNX Runtime CPU session of ``file``: images in, logits out. ``threads`` 0 = all cores."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Idle pool threads spin by default, taking cores other trials train on.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(file, options, providers=["CPUExecutionProvider"])

    def run(images: np.ndarray) -> np.ndarray:
        return sess.run(None, {"input": images})[0]

    return run


@contextlib.contextmanager
def native_stderr_off() -> Iterator[None]:
    """ExecuTorch's C++ runtime and torchao's loader write notes straight to file descriptor 2 (a
    CPU-info probe, the thread pool's size, optional kernels not built for this CPU): not the
    user's business. Python's own errors are raised after it is restored."""
    import os
    import sys

    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def executorch_program(model: nn.Module, input_shape: tuple[int, int, int]) -> bytes:
    """The network lowered to ExecuTorch's XNNPACK backend for batch 1: a .pte program."""
    with native_stderr_off(), warnings_off():
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        model = model.cpu().eval()
        with torch.no_grad():
            exported = torch.export.export(model, (torch.zeros(1, *input_shape),))
            lowered = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
            return bytes(lowered.to_executorch().buffer)


def executorch_method(program: bytes, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """The program's forward; images go through one at a time (it is exported for batch 1).
    XNNPACK's thread pool is set to ``threads`` (0 = all cores)."""
    import os

    with native_stderr_off():
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
        from executorch.runtime import Runtime

        # ExecuTorch's one knob for XNNPACK's pool (declared in its pybindings stub; "unsafe" only
        # while a method runs, and none does here)
        _unsafe_reset_threadpool(threads or len(os.sched_getaffinity(0)))
        loaded = Runtime.get().load_program(program)
        method = loaded.load_method("forward")

    def run(images: np.ndarray) -> np.ndarray:
        assert loaded is not None and program  # the method runs out of both: they live as long as it does
        return np.concatenate([method.execute([torch.from_numpy(images[i:i + 1])])[0].numpy()
                               for i in range(len(images))])

    return run


@dataclass(frozen=True)
class Shipped:
    """A network as it ships in one runtime: the file and how to run it."""
    runtime: str
    file: bytes  # weights.pt (torch), the ONNX file, or the ExecuTorch program (FILES names each)

    def forward(self, model: nn.Module, threads: int) -> Callable[[np.ndarray], np.ndarray]:
        if self.runtime == "executorch":
            return executorch_method(self.file, threads)
        if not is_onnx(self.runtime):
            model.cpu().eval()

            def run(images: np.ndarray) -> np.ndarray:
                with torch.inference_mode():
                    return model(torch.from_numpy(images)).numpy()
            return run
        return session(self.file, threads)


def weights_of(model: nn.Module) -> bytes:
    """The model's state_dict, torch.save'd from the CPU: the torch runtime's file, and how weights
    travel between processes (a worker's result, a model sent to a device)."""
    buffer = io.BytesIO()
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def ship(model: nn.Module, input_shape: tuple[int, int, int], runtime: str,
         calibration: np.ndarray | None = None) -> Shipped:
    """``model`` as ``runtime`` ships it. int8 calibrates on ``calibration`` (training images;
    None: random inputs, for a network whose latency and size only are wanted)."""
    if runtime == "executorch":
        return Shipped(runtime, executorch_program(model, input_shape))
    if runtime == "torch":
        return Shipped(runtime, weights_of(model))
    fp32 = onnx_file(model, input_shape)
    if runtime == "onnxruntime":
        return Shipped(runtime, fp32)
    if calibration is None:
        calibration = np.random.default_rng(0).standard_normal((16, *input_shape)).astype(np.float32)
    return Shipped(runtime, int8_file(fp32, calibration[:CALIBRATION_IMAGES]))


# Rounds of a paired timing (about 0.2 s for a 1.5 ms network and the reference): ten processes'
# figures over 5 minutes within 1.061 max/min, raw 1.291 (benchmarks/latency_drift.py). Counted
# in rounds, so a small network holds the quiet phase less; a large one stops at 0.3 s (and 30).
PAIRED_ROUNDS = 100


def runtime_costs(model: nn.Module, input_shape: tuple[int, int, int], shipped: Shipped, threads: int,
                  throughput_batch: int = THROUGHPUT_BATCH, short: bool = False,
                  extras: Extras = ALL_EXTRAS) -> Metrics:
    """Latency (batch 1), throughput (batch ``throughput_batch``) and file size of ``shipped`` on
    this machine's CPU, timed in the conditions of ``latency.timing``. ``short``: a screening's
    few runs; ``extras``: which of throughput and file size to take. Latency is drift-proof: timed
    interleaved with the reference network and anchored (``evaluators.reference``)."""
    forward = shipped.forward(model, threads)
    reference = reference_forward(shipped.runtime, input_shape, threads)
    one = np.random.default_rng(0).standard_normal((1, *input_shape)).astype(np.float32)
    many = np.repeat(one, throughput_batch, axis=0)
    runs = SHORT if short else {"rounds": PAIRED_ROUNDS}
    with timing(threads) as realtime:
        anchor = anchor_ms(shipped.runtime, input_shape, threads)  # calibrated here on a node's first timing
        paired = paired_runs(lambda: forward(one), reference, **runs)
        batch = time_runs(lambda: forward(many), warmup=1, min_runs=3 if short else 5, min_seconds=0.0,
                          warmup_seconds=0.0) if extras.throughput else None
        used = torch.get_num_threads()
    return Metrics(latency_ms=paired.ratio * anchor, latency_raw_ms=paired.raw_ms,
                   latency_reference_ms=paired.reference_ms, latency_anchor_ms=anchor,
                   latency_runs=paired.runs, latency_threads=used,
                   latency_realtime=realtime, latency_runtime=shipped.runtime,
                   throughput=throughput_batch / (statistics.median(batch) / 1e3) if batch else None,
                   model_kb=len(shipped.file) / 1024 if extras.model_size else None)


def accuracy_in(forward: Callable[[np.ndarray], np.ndarray], split: Split, batch: int = 256) -> float:
    """Accuracy on a split of a runtime's ``forward`` (``Shipped.forward``)."""
    correct = 0
    for i in range(0, len(split), batch):
        logits = forward(split.images(slice(i, i + batch), "cpu").numpy())
        correct += int((logits.argmax(1) == split.labels[i:i + batch].cpu().numpy()).sum())
    return correct / max(1, len(split))
